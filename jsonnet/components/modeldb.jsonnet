// modeldb: model metadata, as the Kubeflow Model Registry - the successor of ModelDB in Kubeflow
// (ModelDB itself is archived). The registry's REST API server (routed at /model-registry/)
// keeps registered models, versions and artifacts in MySQL on a PersistentVolumeClaim. From
// v0.3 the server talks to MySQL itself ("embedmd" data store, Go MySQL driver) and creates or
// upgrades its schema at every start; the ML Metadata gRPC server it used to need is gone
// (manifests/kustomize/base/model-registry-deployment.yaml@v0.3.8: one container).
local images = import 'kfdeploy/images.libsonnet';
local k = import 'kfdeploy/k.libsonnet';
local mysql = import 'kfdeploy/mysql.libsonnet';

{
  description: 'Kubeflow Model Registry (ModelDB successor): REST API server (at /model-registry/), MySQL on a PVC',
  params: {
    image: { default: images.modelRegistry, description: 'Model Registry server image' },
    mysqlImage: { default: images.mysql, description: 'MySQL image' },
    storageSize: { default: '10Gi', description: "Size of MySQL's volume" },
    storageClass: { default: null, description: "StorageClass of MySQL's volume (null: cluster default; '': pre-created PVs only)" },
    route: { default: false, description: 'Route /model-registry/ through the gateway; the REST API has no sign-in, so anyone who reaches the gateway could then register and change models' },
  },
  secrets: {
    mysqlRootPassword: { description: "Password of MySQL's root user (model registry database)" },
    mysqlPassword: { description: 'Password of the mlmd MySQL user the registry server connects as' },
  },
  render(p, env)::
    local ns = env.namespace;
    local name = 'model-registry';
    local db = 'modeldb-mysql';
    local labels = k.labels('modeldb', name);
    local selector = k.selector('modeldb', name);
    local dbLabels = k.labels('modeldb', db);
    local dbSelector = k.selector('modeldb', db);
    // The REST API has no users of its own and writes: admins only.
    local routes = if p.route then [k.mapping(name, '/model-registry/', name, ns, 8080, signIn='none', ui='Model Registry API', allowed='admins')] else [];
    [
      // Database metadb and user mlmd keep the names ML Metadata gave them, so a database made
      // by an earlier release stays in use: the registry's migrations adopt an ML Metadata
      // schema (CREATE TABLE IF NOT EXISTS, schema_version 10: internal/datastore/embedmd/mysql/
      // migrations@v0.3.8), which is the schema the 1.14.0 sidecar wrote (ml_metadata/util/
      // metadata_source_query_config.cc@v1.14.0). The server needs no particular
      // authentication plugin: its driver (go-sql-driver/mysql v1.9.3, go.mod@v0.3.8) speaks
      // caching_sha2_password, MySQL 8's default.
      mysql.server(db,
                   ns,
                   p.mysqlImage,
                   'metadb',
                   'mlmd',
                   env.secrets.mysqlRootPassword,
                   env.secrets.mysqlPassword,
                   p.storageSize,
                   p.storageClass,
                   dbLabels,
                   dbSelector),
      k.service(name, ns, selector, [
        { name: 'http-api', port: 8080, targetPort: 'http-api' },
      ], labels=labels, annotations=if p.route then k.ambassadorConfig(routes) else {}),
      k.httpRoutes(env, routes, labels),
      k.deployment(name, ns, selector, {
        // The server talks to MySQL only, never to the Kubernetes API.
        automountServiceAccountToken: false,
        securityContext: k.podSecurityContext(),
        containers: [{
          name: 'rest',
          image: p.image,
          command: ['/model-registry', 'proxy'],
          args: ['--hostname=0.0.0.0', '--port=8080', '--datastore-type=embedmd', '--embedmd-database-type=mysql'],
          // The data source name carries the password, so it reaches the server through the
          // environment (every flag can be given as MR_<FLAG>: cmd/root.go@v0.3.8, viper with
          // prefix MR) rather than as an argument anyone on the node can read in the process
          // list; Kubernetes expands the $(...) references from the Secret at container start.
          env: [
            k.secretEnv('DB_USER', db + '-secrets', 'user'),
            k.secretEnv('DB_PASSWORD', db + '-secrets', 'password'),
            k.secretEnv('DB_DATABASE', db + '-secrets', 'database'),
            k.env('MR_EMBEDMD_DATABASE_DSN', '$(DB_USER):$(DB_PASSWORD)@tcp(' + db + ':3306)/$(DB_DATABASE)?charset=utf8mb4'),
          ],
          ports: [{ name: 'http-api', containerPort: 8080 }],
          resources: k.resources('50m', '64Mi', memoryLimit='256Mi'),
          // The server listens at once and connects to MySQL in the background, retrying for
          // about 5 minutes before it exits (internal/datastore/embedmd/mysql/connect.go@v0.3.8).
          // /readyz/health answers 200 once the database is connected, migrated and queryable
          // (cmd/proxy.go@v0.3.8), so it gates traffic; liveness only asks whether the process
          // serves, so that a slow first start of MySQL does not get the registry killed.
          readinessProbe: k.httpProbe('/readyz/health', 'http-api', initialDelaySeconds=5, periodSeconds=10, timeoutSeconds=5),
          livenessProbe: k.tcpProbe('http-api', initialDelaySeconds=30, periodSeconds=10),
          // 65532 is the image's user (Dockerfile@v0.3.8); logs go to stderr, migrations are
          // built into the binary: nothing is written to the filesystem.
          securityContext: k.securityContext(runAsUser=65532, runAsGroup=65532),
        }],
      }, labels=labels),
    ],
}
