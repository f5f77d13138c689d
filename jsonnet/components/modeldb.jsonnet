// modeldb: model metadata, as the Kubeflow Model Registry - the successor of ModelDB in Kubeflow
// (ModelDB itself is archived). The registry's REST API server (routed at /model-registry/)
// stores registered models, versions and artifacts through ML Metadata (MLMD, a sidecar) in
// MySQL on a PersistentVolumeClaim. The Model Registry has no stable standalone web frontend at
// this version: clients are the REST API and the model-registry Python client.
local images = import 'kfdeploy/images.libsonnet';
local k = import 'kfdeploy/k.libsonnet';
local mysql = import 'kfdeploy/mysql.libsonnet';

{
  description: 'Kubeflow Model Registry (ModelDB successor): REST API server (at /model-registry/) with ML Metadata, MySQL on a PVC',
  params: {
    image: { default: images.modelRegistry, description: 'Model Registry server image' },
    metadataImage: { default: images.mlMetadataServer, description: 'ML Metadata gRPC server image' },
    mysqlImage: { default: images.mysql, description: 'MySQL image' },
    storageSize: { default: '10Gi', description: "Size of MySQL's volume" },
    storageClass: { default: null, description: "StorageClass of MySQL's volume (null: cluster default; '': pre-created PVs only)" },
  },
  secrets: {
    mysqlRootPassword: { description: "Password of MySQL's root user (model registry database)" },
    mysqlPassword: { description: 'Password of the mlmd MySQL user the metadata server connects as' },
  },
  render(p, env)::
    local ns = env.namespace;
    local name = 'model-registry';
    local labels = k.labels('modeldb', name);
    local selector = k.selector('modeldb', name);
    local dbLabels = k.labels('modeldb', 'modeldb-mysql');
    local dbSelector = k.selector('modeldb', 'modeldb-mysql');
    [
      mysql.server('modeldb-mysql',
                   ns,
                   p.mysqlImage,
                   'metadb',
                   'mlmd',
                   env.secrets.mysqlRootPassword,
                   env.secrets.mysqlPassword,
                   p.storageSize,
                   p.storageClass,
                   dbLabels,
                   dbSelector,
                   // ML Metadata's MySQL client authenticates with the native password plugin.
                   args=['--default-authentication-plugin=mysql_native_password']),
      k.service(name, ns, selector, [
        { name: 'http-api', port: 8080, targetPort: 'http-api' },
        { name: 'grpc-api', port: 9090, targetPort: 'grpc-api' },
      ], labels=labels, annotations=k.ambassadorConfig([k.mapping(name, '/model-registry/', name, ns, 8080)])),
      k.deployment(name, ns, selector, {
        automountServiceAccountToken: false,
        securityContext: k.podSecurityContext(),
        containers: [
          {
            name: 'rest',
            image: p.image,
            command: ['/model-registry', 'proxy'],
            args: ['--hostname=0.0.0.0', '--port=8080', '--mlmd-hostname=localhost', '--mlmd-port=9090'],
            ports: [{ name: 'http-api', containerPort: 8080 }],
            resources: k.resources('50m', '64Mi', memoryLimit='256Mi'),
            readinessProbe: k.tcpProbe('http-api', initialDelaySeconds=3, periodSeconds=5),
            livenessProbe: k.tcpProbe('http-api', initialDelaySeconds=30, periodSeconds=10),
            securityContext: k.securityContext(runAsUser=65532),
          },
          {
            name: 'metadata',
            image: p.metadataImage,
            command: ['/bin/metadata_store_server'],
            // The password reaches the server as an argument (its only way to take one), expanded
            // from the Secret at container start; it never appears in the manifest.
            args: [
              '--grpc_port=9090',
              '--mysql_config_host=modeldb-mysql',
              '--mysql_config_port=3306',
              '--mysql_config_database=$(DB_DATABASE)',
              '--mysql_config_user=$(DB_USER)',
              '--mysql_config_password=$(DB_PASSWORD)',
              '--enable_database_upgrade=true',
            ],
            env: [
              k.secretEnv('DB_DATABASE', 'modeldb-mysql-secrets', 'database'),
              k.secretEnv('DB_USER', 'modeldb-mysql-secrets', 'user'),
              k.secretEnv('DB_PASSWORD', 'modeldb-mysql-secrets', 'password'),
            ],
            ports: [{ name: 'grpc-api', containerPort: 9090 }],
            resources: k.resources('50m', '128Mi', memoryLimit='512Mi'),
            readinessProbe: k.tcpProbe('grpc-api', initialDelaySeconds=3, periodSeconds=5),
            livenessProbe: k.tcpProbe('grpc-api', initialDelaySeconds=30, periodSeconds=10),
            securityContext: k.securityContext(runAsUser=65534, runAsGroup=65534),
          },
        ],
      }, labels=labels),
    ],
}
