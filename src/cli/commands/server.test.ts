import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { listenError } from './server.ts';

describe('ward server listen errors', () => {
  const err = (code: string, address: string, port = 4280) => Object.assign(new Error(`listen ${code}`), { code, syscall: 'listen', address, port });
  const cases: Array<[Error, string | undefined]> = [
    [err('EADDRINUSE', '127.0.0.1'), 'cannot listen on 127.0.0.1:4280: another process is using it'],
    [err('EACCES', '::', 443), 'cannot listen on [::]:443: permission denied'],
    [err('EADDRNOTAVAIL', '10.0.0.9'), 'cannot listen on 10.0.0.9:4280: no such address on this host'],
    [err('EMFILE', '127.0.0.1'), undefined],
    [Object.assign(new Error('x'), { code: 'EADDRINUSE', syscall: 'connect' }), undefined],
    [new TypeError('a bug'), undefined],
  ];
  for (const [e, message] of cases) {
    it(`${(e as NodeJS.ErrnoException).code ?? e.name} → ${message ?? 'not a user error'}`, () => {
      assert.equal(listenError(e)?.message, message);
    });
  }
});
