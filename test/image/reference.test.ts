import test from 'ava';
import { parseImageRef } from '../../src/image/reference.js';
import { ImageError } from '../../src/image/errors.js';

test('image references as skopeo writes them', (t) => {
  const d = `sha256:${'a'.repeat(64)}`;
  const cases: [string, Record<string, unknown>][] = [
    ['oci:/srv/img', { kind: 'oci', dir: '/srv/img' }],
    ['oci:/srv/img:v1.2', { kind: 'oci', dir: '/srv/img', tag: 'v1.2' }],
    ['oci:relative/dir:latest', { kind: 'oci', dir: 'relative/dir', tag: 'latest' }],
    ['docker://127.0.0.1:5000/team/app', { kind: 'docker', host: '127.0.0.1:5000', name: 'team/app' }],
    ['docker://reg.lan/team/app:12', { kind: 'docker', host: 'reg.lan', name: 'team/app', tag: '12' }],
    ['docker://localhost/app@' + d, { kind: 'docker', host: 'localhost', name: 'app', digest: { algorithm: 'sha256', hex: 'a'.repeat(64), text: d } }],
    ['docker://debian:12', { kind: 'docker', host: 'docker.io', name: 'library/debian', tag: '12' }],
    ['docker://grafana/grafana', { kind: 'docker', host: 'docker.io', name: 'grafana/grafana' }],
  ];
  for (const [text, want] of cases) t.like(parseImageRef(text), { ...want, text }, text);
  for (const bad of ['/srv/img', 'oci:', 'oci:/x:bad!tag', 'docker://reg.lan/App', `docker://reg.lan/app@sha256:${'a'.repeat(10)}`, 'http://reg.lan/app']) {
    t.throws(() => parseImageRef(bad), { instanceOf: ImageError }, bad);
  }
});
