// A single MySQL server on a PersistentVolumeClaim, for components that keep their state in
// MySQL (katib, modeldb). Passwords come from generated secrets: the Secret's stringData holds
// the env.secrets placeholders and is kept on teardown, as is the data volume's claim.
local k = import 'k.libsonnet';

// Succeeds once the application's user can query its database over TCP (the password goes
// through MYSQL_PWD, never argv).
local appQuery(periodSeconds, failureThreshold) = k.execProbe(
  ['bash', '-c', 'MYSQL_PWD="$MYSQL_PASSWORD" mysql -h 127.0.0.1 -u "$MYSQL_USER" -D "$MYSQL_DATABASE" -e "SELECT 1"'],
  initialDelaySeconds=0,
  periodSeconds=periodSeconds,
  failureThreshold=failureThreshold,
);

{
  // name: prefix of every object (Service <name> is the database host); database/user: created
  // at first start; secretName: keys root-password and password.
  server(name,
         namespace,
         image,
         database,
         user,
         rootPassword,
         password,
         storageSize,
         storageClass,
         labels,
         selector,
         cpu='100m',
         memory='512Mi',
         args=[]):: [
    k.passwordSecret(name + '-secrets', namespace, {
      'root-password': rootPassword,
      password: password,
      user: user,
      database: database,
    }, labels),
    k.pvc(name, namespace, storageSize, storageClass, labels=labels),
    k.service(name, namespace, selector, [{ name: 'mysql', port: 3306, targetPort: 'mysql' }], labels=labels),
    k.deployment(name, namespace, selector, {
      automountServiceAccountToken: false,
      // 999 is the mysql user of the official image; fsGroup makes the volume its own.
      securityContext: k.podSecurityContext(fsGroup=999),
      containers: [{
        name: 'mysql',
        image: image,
        // MySQL 8.4 disables mysql_native_password; data directories that kfdeploy up to
        // 8fd3195 initialised hold users of that plugin (modeldb's, made under
        // --default-authentication-plugin=mysql_native_password for ML Metadata), who could then
        // no longer sign in. New users get caching_sha2_password, which every client here speaks.
        args: ['--datadir', '/var/lib/mysql/datadir', '--mysql-native-password=ON'] + args,
        ports: [{ name: 'mysql', containerPort: 3306 }],
        env: [
          k.secretEnv('MYSQL_ROOT_PASSWORD', name + '-secrets', 'root-password'),
          k.secretEnv('MYSQL_PASSWORD', name + '-secrets', 'password'),
          k.env('MYSQL_USER', user),
          k.env('MYSQL_DATABASE', database),
        ],
        resources: k.resources(cpu, memory, memoryLimit='1Gi'),
        // First boot initialises the data directory with a temporary server that listens on
        // the socket only, then creates the database and user; a restart in the middle leaves
        // a data directory the entrypoint takes as initialised, without the user. So liveness
        // waits for this startup probe, which passes only once the final server answers on
        // TCP as the application's user (up to 10 minutes on a slow volume).
        startupProbe: appQuery(periodSeconds=10, failureThreshold=60),
        // mysqladmin ping succeeds as soon as the server answers (even "access denied").
        livenessProbe: k.execProbe(['mysqladmin', 'ping', '-h', '127.0.0.1'], initialDelaySeconds=0, periodSeconds=10),
        // Ready once the application's user can query its database.
        readinessProbe: appQuery(periodSeconds=10, failureThreshold=3),
        // The server writes only to its data volume, its socket directory and /tmp.
        securityContext: k.securityContext(runAsUser=999, runAsGroup=999),
        volumeMounts: [
          { name: 'data', mountPath: '/var/lib/mysql' },
          { name: 'run', mountPath: '/var/run/mysqld' },
          k.tmpMount,
        ],
      }],
      volumes: [
        { name: 'data', persistentVolumeClaim: { claimName: name } },
        k.emptyDir('run', '16Mi'),
        k.tmpVolume,
      ],
    }, labels=labels, strategy='Recreate'),
  ],
}
