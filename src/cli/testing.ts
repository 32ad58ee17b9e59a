import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { CliIo, Env } from './command.ts';
import { main, type MainOptions } from './index.ts';

/**
 * Test helpers for the CLI: run main() in-process with captured streams, and a real HTTP server on
 * port 0 that stands in for the Ward API. Only tests import this file.
 */

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions extends Omit<MainOptions, 'env'> {
  env?: Env;
  /** stdin is what the command reads from standard input; default empty. */
  stdin?: string;
}

/** runCli runs `ward <argv>` in-process and returns its exit code and output. */
export async function runCli(argv: string[], opts: RunOptions = {}): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    stdin: Readable.from(opts.stdin === undefined ? [] : [Buffer.from(opts.stdin)]) as unknown as CliIo['stdin'],
  };
  const { stdin: _stdin, env, ...rest } = opts;
  const code = await main(argv, io, { env: env ?? {}, ...rest });
  return { code, stdout, stderr };
}

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: unknown;
}

export interface FakeReply {
  status: number;
  body?: unknown;
  /** raw is sent as-is instead of JSON. */
  raw?: string;
  headers?: Record<string, string>;
}

export interface FakeApi {
  url: string;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

/** fakeApi starts a real HTTP server on 127.0.0.1:0 that answers every request with handler's reply. */
export async function fakeApi(handler: (req: RecordedRequest) => FakeReply | Promise<FakeReply>): Promise<FakeApi> {
  const requests: RecordedRequest[] = [];
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const recorded: RecordedRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: text ? JSON.parse(text) : undefined };
    requests.push(recorded);
    const reply = await handler(recorded);
    const payload = reply.raw ?? (reply.body === undefined ? '' : JSON.stringify(reply.body));
    res.writeHead(reply.status, { 'content-type': reply.raw === undefined ? 'application/json' : 'text/html', ...reply.headers });
    res.end(payload);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** tempDir makes a fresh directory and returns it with a function that removes it. */
export async function tempDir(): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'ward-cli-'));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}
