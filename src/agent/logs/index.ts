// Logs: each instance's output captured from files the runtime writes into a bounded on-disk journal.
export { DEFAULT_JOURNAL_LIMITS, LogJournal, type JournalLimits, type LogEntry, type LogLine, type LogReader, type LogStream, type ReadOptions } from './journal.ts';
export { OutputCapture, punchHoleArgv, type CaptureOptions } from './capture.ts';
