// The example app of `ward up`: a Node.js HTTP server with no dependencies. It says which release and
// instance answered (Ward sets WARD_RELEASE_VERSION and WARD_INSTANCE_ID), answers /healthz for the
// health check in ward.toml, and on SIGTERM stops accepting, lets requests in flight finish, then exits,
// so a deploy that drains it loses no request.
'use strict';
const http = require('node:http');

const port = Number(process.env.PORT || 8080);
const release = process.env.WARD_RELEASE_VERSION || 'unknown';
const instance = process.env.WARD_INSTANCE_ID || 'local';
const started = new Date().toISOString();

const server = http.createServer((req, res) => {
  const path = (req.url || '/').split('?')[0];
  if (path === '/healthz') {
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
    return res.end('ok\n');
  }
  if (path === '/') {
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
    return res.end(`Hello from Ward! Release v${release}, instance ${instance}, up since ${started}.\n`);
  }
  res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
  res.end('not found\n');
});
server.keepAliveTimeout = 5000;
server.listen(port, '::', () => console.log(`hello: release v${release}, instance ${instance}, listening on ${port}`));

process.on('SIGTERM', () => {
  console.log('hello: SIGTERM, finishing requests in flight');
  server.close(() => process.exit(0));
  server.closeIdleConnections();
});
