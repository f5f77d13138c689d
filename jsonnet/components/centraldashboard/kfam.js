// A read-only stand-in for Kubeflow's access-management API (KFAM), for a platform without
// Kubeflow Profiles. The central dashboard asks KFAM on every page load which namespaces the user
// may work in (GET /kfam/v1/bindings) and whether the user is a cluster admin
// (GET /kfam/v1/role/clusteradmin); without an answer it shows an error and no namespace. This
// server answers those two questions from a fixed configuration: every user may work in the
// app's namespaces, with the role the configuration names. Everything that would change profiles
// or contributors is refused with a message saying why.
'use strict';

const fs = require('fs');
const http = require('http');

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));

function send(res, code, body) {
  const data = JSON.stringify(body);
  res.writeHead(code, {'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data)});
  res.end(data);
}

function bindings(query) {
  // The dashboard filters by user, namespace and role; there is one role for everyone.
  const user = query.get('user') || config.anonymousUser;
  const namespace = query.get('namespace');
  const role = query.get('role');
  if (role && role !== config.role) {
    return [];
  }
  return config.namespaces
      .filter((ns) => !namespace || ns === namespace)
      .map((ns) => ({
        user: {kind: 'User', name: user},
        referredNamespace: ns,
        roleRef: {kind: 'ClusterRole', name: config.role},
      }));
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://kfam.invalid');
  if (req.method !== 'GET') {
    send(res, 501, {error: 'this platform runs without Kubeflow Profiles: namespaces and contributors are managed with kubectl, not from the dashboard'});
    return;
  }
  switch (url.pathname) {
    case '/healthz':
      send(res, 200, {status: 'ok'});
      return;
    case '/kfam/v1/role/clusteradmin':
      send(res, 200, config.clusterAdmin);
      return;
    case '/kfam/v1/bindings':
      send(res, 200, {bindings: bindings(url.searchParams)});
      return;
    default:
      send(res, 404, {error: 'no such KFAM route: ' + url.pathname});
  }
});

// host is unset in the pod (every address, so that the kubelet can probe it).
server.listen(config.port, config.host, () => {
  console.log('read-only KFAM stand-in listening on port ' + server.address().port + ' for namespaces ' + config.namespaces.join(', '));
});

process.on('SIGTERM', () => server.close(() => process.exit(0)));
