import type { Writable } from 'node:stream';

/**
 * AccessLogEntry is one answered request. It names no secret: no query string values beyond the path
 * as sent, no header values except the user agent, no bodies.
 */
export interface AccessLogEntry {
  /** time is the ISO time the request arrived. */
  time: string;
  request_id: string;
  /** app is undefined when no route matched. */
  app: string | undefined;
  method: string;
  host: string;
  path: string;
  protocol: string;
  status: number;
  /** duration_ms is from request headers to the end of the response. */
  duration_ms: number;
  /** bytes is the response body size sent to the client. */
  bytes: number;
  client: string;
  /** upstream is the instance address that answered, if any; instance is that instance's id. */
  upstream: string | undefined;
  instance: string | undefined;
  user_agent: string | undefined;
}

/**
 * AccessLogSink receives one entry per answered request. write is called on the request path: it must
 * not block or throw (buffer, and drop with a counter when the consumer is slow). `ward server` puts the
 * lines into the log stream of the instance that answered (src/server/edge-access-log.ts).
 */
export interface AccessLogSink {
  write(entry: AccessLogEntry): void;
}

/** jsonLinesSink writes each entry as one JSON line to a stream, dropping lines while it is backed up. */
export function jsonLinesSink(stream: Writable): AccessLogSink & { dropped: number } {
  const sink = {
    dropped: 0,
    write(entry: AccessLogEntry): void {
      if (stream.writableNeedDrain) {
        sink.dropped++;
        return;
      }
      stream.write(`${JSON.stringify(entry)}\n`);
    },
  };
  return sink;
}

/** NULL_ACCESS_LOG discards entries. */
export const NULL_ACCESS_LOG: AccessLogSink = { write() {} };
