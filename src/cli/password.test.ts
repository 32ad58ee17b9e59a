import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { UserError } from '../core/index.ts';
import type { CliIo, InputStream } from './command.ts';
import { Interrupted, readPassword, stripOneNewline } from './password.ts';

function pipeIo(stdin: string): { io: CliIo; stderr: () => string } {
  let err = '';
  return {
    io: { stdout: { write: () => true }, stderr: { write: (s: string) => (err += s) }, stdin: Readable.from([Buffer.from(stdin)]) as unknown as InputStream },
    stderr: () => err,
  };
}

/** FakeTty is a terminal stdin: it records raw-mode switches and delivers keystrokes when told. */
class FakeTty extends EventEmitter {
  isTTY = true;
  rawModes: boolean[] = [];
  setRawMode(mode: boolean) {
    this.rawModes.push(mode);
    return this;
  }
  setEncoding() {}
  resume() {}
  pause() {}
  type(keys: string) {
    setImmediate(() => this.emit('data', keys));
  }
  async *[Symbol.asyncIterator](): AsyncIterator<string> {
    throw new Error('a terminal is not read to its end');
  }
}

function ttyIo(): { io: CliIo; tty: FakeTty; stderr: () => string } {
  const tty = new FakeTty();
  let err = '';
  return { io: { stdout: { write: () => true }, stderr: { write: (s: string) => (err += s) }, stdin: tty as unknown as InputStream }, tty, stderr: () => err };
}

describe('passwords', () => {
  it('strips exactly one trailing newline', () => {
    const cases: Array<[string, string]> = [
      ['pw', 'pw'],
      ['pw\n', 'pw'],
      ['pw\r\n', 'pw'],
      ['pw\n\n', 'pw\n'],
      [' pw \n', ' pw '],
      ['\n', ''],
    ];
    for (const [input, want] of cases) assert.equal(stripOneNewline(input), want, JSON.stringify(input));
  });

  it('reads --password-stdin to the end, before WARD_PASSWORD', async () => {
    const { io } = pipeIo('correct horse\nbattery\n');
    assert.equal(await readPassword(io, { WARD_PASSWORD: 'env' }, { fromStdin: true }), 'correct horse\nbattery');
  });

  it('refuses an empty stdin', async () => {
    await assert.rejects(readPassword(pipeIo('\n').io, {}, { fromStdin: true }), (e: unknown) => e instanceof UserError && e.message === 'stdin held no password');
  });

  it('uses WARD_PASSWORD without --password-stdin', async () => {
    assert.equal(await readPassword(pipeIo('ignored').io, { WARD_PASSWORD: 'from env' }, { fromStdin: false }), 'from env');
  });

  it('fails, rather than hangs, when there is no source and no terminal', async () => {
    await assert.rejects(readPassword(pipeIo('').io, {}, { fromStdin: false }), (e: unknown) => {
      assert.ok(e instanceof UserError);
      assert.equal(e.code, 'usage');
      assert.equal(e.hint, 'pass --password-stdin and pipe it in, or set WARD_PASSWORD');
      return true;
    });
  });

  it('prompts on a terminal with echo off, handling backspace', async () => {
    const { io, tty, stderr } = ttyIo();
    tty.type('sex\u007fcret pass\r');
    assert.equal(await readPassword(io, {}, { fromStdin: false }), 'secret pass');
    assert.deepEqual(tty.rawModes, [true, false]);
    assert.equal(stderr(), 'Password: \n');
    assert.equal(tty.listenerCount('data'), 0);
  });

  it('asks twice for a new password and refuses a mismatch', async () => {
    const { io, tty } = ttyIo();
    tty.type('first one\r');
    const p = readPassword(io, {}, { fromStdin: false, confirm: true });
    await new Promise((r) => setTimeout(r, 10));
    tty.type('first 0ne\r');
    await assert.rejects(p, /the two passwords differ/);
    assert.deepEqual(tty.rawModes, [true, false, true, false]);
  });

  it('turns Ctrl-C at the prompt into Interrupted and restores the terminal', async () => {
    const { io, tty } = ttyIo();
    tty.type('abc\u0003');
    await assert.rejects(readPassword(io, {}, { fromStdin: false }), Interrupted);
    assert.deepEqual(tty.rawModes, [true, false]);
  });
});
