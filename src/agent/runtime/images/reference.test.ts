import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UserError } from '../../../core/index.ts';
import { formatReference, parseReference, type ImageReference } from './reference.ts';

const D = `sha256:${'a'.repeat(64)}`;

test('parseReference reads registry references as Docker does', () => {
  const cases: [string, ImageReference, string][] = [
    ['registry.example.com/team/app:1.2', { transport: 'registry', registry: 'registry.example.com', repository: 'team/app', tag: '1.2', digest: undefined }, 'registry.example.com/team/app:1.2'],
    [`registry.example.com/team/app@${D}`, { transport: 'registry', registry: 'registry.example.com', repository: 'team/app', tag: undefined, digest: D }, `registry.example.com/team/app@${D}`],
    [`registry.example.com/team/app:1.2@${D}`, { transport: 'registry', registry: 'registry.example.com', repository: 'team/app', tag: '1.2', digest: D }, `registry.example.com/team/app:1.2@${D}`],
    ['localhost:5000/app', { transport: 'registry', registry: 'localhost:5000', repository: 'app', tag: 'latest', digest: undefined }, 'localhost:5000/app:latest'],
    ['localhost/app:x', { transport: 'registry', registry: 'localhost', repository: 'app', tag: 'x', digest: undefined }, 'localhost/app:x'],
    ['127.0.0.1:5000/a/b/c:v1', { transport: 'registry', registry: '127.0.0.1:5000', repository: 'a/b/c', tag: 'v1', digest: undefined }, '127.0.0.1:5000/a/b/c:v1'],
    ['[::1]:5000/app:1', { transport: 'registry', registry: '[::1]:5000', repository: 'app', tag: '1', digest: undefined }, '[::1]:5000/app:1'],
    ['alpine', { transport: 'registry', registry: 'docker.io', repository: 'library/alpine', tag: 'latest', digest: undefined }, 'docker.io/library/alpine:latest'],
    ['team/app:2', { transport: 'registry', registry: 'docker.io', repository: 'team/app', tag: '2', digest: undefined }, 'docker.io/team/app:2'],
    ['docker://registry.example.com/app:1', { transport: 'registry', registry: 'registry.example.com', repository: 'app', tag: '1', digest: undefined }, 'registry.example.com/app:1'],
    ['my-reg.example.com:443/a_b/c__d/e-f.g:T_1.x-y', { transport: 'registry', registry: 'my-reg.example.com:443', repository: 'a_b/c__d/e-f.g', tag: 'T_1.x-y', digest: undefined }, 'my-reg.example.com:443/a_b/c__d/e-f.g:T_1.x-y'],
  ];
  for (const [input, want, canonical] of cases) {
    assert.deepEqual(parseReference(input), want, input);
    assert.equal(formatReference(parseReference(input)), canonical, input);
  }
});

test('parseReference reads transports as skopeo writes them', () => {
  const cases: [string, ImageReference][] = [
    ['oci-archive:app.tar', { transport: 'oci-archive', path: 'app.tar', selector: undefined }],
    ['oci-archive:/tmp/app.tar:1.2', { transport: 'oci-archive', path: '/tmp/app.tar', selector: '1.2' }],
    ['docker-archive:./img.tar', { transport: 'docker-archive', path: './img.tar', selector: undefined }],
    ['docker-archive:img.tar:team/app:1', { transport: 'docker-archive', path: 'img.tar', selector: 'team/app:1' }],
    ['docker-archive:img.tar:@1', { transport: 'docker-archive', path: 'img.tar', selector: '@1' }],
    ['oci:/var/lib/layout', { transport: 'oci', path: '/var/lib/layout', selector: undefined }],
    ['oci:layout:latest', { transport: 'oci', path: 'layout', selector: 'latest' }],
  ];
  for (const [input, want] of cases) {
    assert.deepEqual(parseReference(input), want, input);
    assert.equal(formatReference(parseReference(input)), input);
  }
});

test('parseReference refuses bad references with a hint', () => {
  const cases: [string, RegExp][] = [
    ['', /empty/],
    ['Registry.example.com/App:1', /lowercase/],
    ['registry.example.com/team/App', /lowercase/],
    ['registry.example.com/app:-bad', /not a valid tag/],
    ['registry.example.com/app@sha256:abc', /not a sha256 digest/],
    [`registry.example.com/app@sha512:${'a'.repeat(128)}`, /not a sha256 digest/],
    ['registry.example.com/', /missing|not a valid name/],
    ['registry.example.com/a//b', /not a valid name component/],
    ['exa_mple.com:5000/app', /not a valid registry host/],
    ['localhost:99999/app', /out of range/],
    ['oci-archive:', /needs a path/],
    ['oci:dir:', /empty/],
    ['containers-storage:app', /not supported/],
    ['docker-daemon:app:1', /not supported/],
    ['app name', /white space/],
    [`r.example.com/${'a'.repeat(260)}`, /longer than 255/],
  ];
  for (const [input, want] of cases) {
    assert.throws(() => parseReference(input), (e: unknown) => {
      assert.ok(e instanceof UserError, input);
      assert.equal(e.code, 'invalid_image_ref', input);
      assert.match(e.message, want, input);
      assert.ok(e.hint, `${input} has a hint`);
      return true;
    });
  }
});
