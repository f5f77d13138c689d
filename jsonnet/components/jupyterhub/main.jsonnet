// jupyterhub: multi-user notebooks as in Kubeflow v0.3. The hub (StatefulSet tf-hub, pod tf-hub-0)
// spawns one notebook pod per user with KubeSpawner, from profiles that set the image, CPU,
// memory and nvidia.com/gpu count; each user gets a PersistentVolumeClaim of their own. The
// configurable-http-proxy Deployment serves the users (Service tf-hub-lb, routed at /hub/ and
// /user/). With the `gateway` component, users sign in once at the gateway and the hub signs them
// in as that identity (kfdeploy_gateway_auth.py); without it, with the shared password kfdeploy
// generates (admin users with a separate generated admin password). The idle culler (a hub-managed service) stops idle notebook servers so
// that their GPUs are released.
local images = import 'kfdeploy/images.libsonnet';
local k = import 'kfdeploy/k.libsonnet';

// KubeSpawner's image when no profile applies: the default profile's, rendered explicitly so
// that a mirror rewrites it (KubeSpawner's own default is the latest tag of
// quay.io/jupyterhub/singleuser, kubespawner/spawner.py@7.0.0).
local spawnerImage(p) =
  local defaults = [x.image for x in p.profiles if std.get(x, 'default', false)];
  local all = [x.image for x in p.profiles];
  if std.length(defaults) > 0 then defaults[0] else if std.length(all) > 0 then all[0] else images.notebookScipy;

{
  description: 'JupyterHub (hub StatefulSet tf-hub + configurable-http-proxy, at /hub/) spawning per-user notebook pods with their own volumes, from image/CPU/memory/GPU profiles',
  params: {
    hubImage: { default: images.jupyterhub, description: 'Hub image (JupyterHub with KubeSpawner)' },
    proxyImage: { default: images.configurableHttpProxy, description: 'configurable-http-proxy image' },
    profiles: {
      default: [
        { displayName: 'Data science (CPU)', description: 'SciPy notebook, 0.5 CPU, 2 GB', image: images.notebookScipy, cpu: 0.5, memory: '2G', gpus: 0, default: true },
        { displayName: 'TensorFlow (CPU)', description: 'TensorFlow notebook, 1 CPU, 4 GB', image: images.notebookTensorflow, cpu: 1, memory: '4G', gpus: 0 },
        { displayName: 'PyTorch (1 GPU)', description: 'PyTorch notebook, 1 CPU, 8 GB, 1 GPU', image: images.notebookPytorch, cpu: 1, memory: '8G', gpus: 1 },
      ],
      description: 'Spawner profiles users choose from: displayName, description, image, cpu (cores, a number), cpuLimit (optional), memory (e.g. 2G), gpus (count of gpuResource), default',
    },
    gpuResource: { default: 'nvidia.com/gpu', description: 'Extended resource name of the GPUs that profiles request' },
    storageSize: { default: '10Gi', description: "Size of each user's notebook volume" },
    storageClass: { default: null, description: "StorageClass of the user volumes and the hub's database volume (null: cluster default; '': pre-created PVs only)" },
    hubStorageSize: { default: '1Gi', description: "Size of the hub's database volume" },
    adminUsers: { default: [], description: 'User names with JupyterHub admin rights (without the gateway component they sign in with the generated adminPassword)' },
    adminGroups: { default: ['admins'], description: "Groups of the gateway's sign-in whose members are JupyterHub admins (with the gateway component; its adminGroup)" },
    cullIdle: { default: true, description: 'Stop notebook servers that have been idle for cullTimeout seconds (jupyterhub-idle-culler)' },
    cullTimeout: { default: 3600, description: 'Seconds without activity after which a notebook server is stopped' },
    cullEvery: { default: 600, description: 'Seconds between two checks for idle servers' },
    cullMaxAge: { default: 0, description: 'Seconds after which a server is stopped even if active (0: no limit)' },
  },
  secrets: {
    userPassword: { description: 'Shared password users sign in to JupyterHub with (any user name), unused with the gateway component' },
    adminPassword: { description: 'Password the adminUsers sign in to JupyterHub with, unused with the gateway component' },
    proxyToken: { description: 'Token the hub uses to configure the proxy' },
  },
  // The notebook images KubeSpawner starts user pods from. The idle culler runs inside the hub's
  // own container (a hub-managed service), so it pulls nothing.
  runtimeImages(p, env):: [
    { image: x.image, use: "notebook servers of spawner profile '%s'" % x.displayName }
    for x in p.profiles
  ] + [{ image: spawnerImage(p), use: 'notebook servers when no profile applies (KubeSpawner image)' }],
  render(p, env)::
    local seconds(name, min) =
      assert std.isNumber(p[name]) && std.floor(p[name]) == p[name] && p[name] >= min : 'jupyterhub: %s must be a whole number of seconds >= %d, got %s' % [name, min, p[name]];
      p[name];
    local ns = env.namespace;
    local labels = k.labels('jupyterhub', 'tf-hub');
    local selector = k.selector('jupyterhub', 'tf-hub');
    local proxyLabels = k.labels('jupyterhub', 'tf-hub-proxy');
    local proxySelector = k.selector('jupyterhub', 'tf-hub-proxy');
    // The hub serves /hub/ and the notebook servers /user/<name>/: forwarded unchanged. Every
    // signed-in user may reach the hub, which decides whose server is whose.
    // Behind the gateway's sign-in the hub has no password of its own.
    local gatewaySignIn = std.get(env, 'gateway', '') == 'gateway-api';
    local signIn = if gatewaySignIn then 'gateway' else 'password';
    local routes = [
      k.mapping('jupyterhub-hub', '/hub/', 'tf-hub-lb', ns, 80, rewrite='', websocket=true, signIn=signIn, ui='JupyterHub', allowed='signed-in'),
      k.mapping('jupyterhub-user', '/user/', 'tf-hub-lb', ns, 80, rewrite='', websocket=true, timeoutMs=300000, signIn=signIn, allowed='signed-in'),
    ];
    local configDir = '/usr/local/etc/jupyterhub/kfdeploy';
    local hubURL = 'http://tf-hub.' + ns + '.svc:8081';
    local signInProxy = k.gateway.signInProxy;
    local config = {
      'jupyterhub_config.py': importstr 'jupyterhub_config.py',
      [if gatewaySignIn then 'kfdeploy_gateway_auth.py']: importstr 'kfdeploy_gateway_auth.py',
      'settings.json': std.manifestJson({
        signIn: if gatewaySignIn then {
          mode: 'gateway',
          authURL: 'http://%s.%s.svc:%d/oauth2/auth' % [signInProxy.service, ns, signInProxy.port],
          adminGroups: p.adminGroups,
        } else { mode: 'password' },
        hubService: 'tf-hub',
        proxyApiService: 'tf-hub-proxy-api',
        userServiceAccount: 'jupyterhub-user',
        adminUsers: p.adminUsers,
        profiles: p.profiles,
        image: spawnerImage(p),
        gpuResource: p.gpuResource,
        storageSize: p.storageSize,
        storageClass: p.storageClass,
        userPodLabels: { 'app.kubernetes.io/part-of': 'kubeflow', 'app.kubernetes.io/component': 'jupyterhub-user' },
        cull: { enabled: p.cullIdle, timeout: seconds('cullTimeout', 60), every: seconds('cullEvery', 10), maxAge: seconds('cullMaxAge', 0) },
      } + (if std.length(env.imagePullSecrets) > 0 then { imagePullSecrets: env.imagePullSecrets } else {})),
    };
    [
      // The hub manages the user pods and their volumes in this namespace only.
      k.namespacedAccess('jupyterhub', ns, [
        k.rule([''], ['pods', 'persistentvolumeclaims', 'services', 'secrets'], ['get', 'list', 'watch', 'create', 'delete']),
        k.rule([''], ['events'], k.read),
      ], labels),
      // The user pods get no Kubernetes API access at all.
      k.serviceAccount('jupyterhub-user', ns, labels, automount=false),
      k.passwordSecret('jupyterhub', ns, {
        'proxy-token': env.secrets.proxyToken,
      } + (if gatewaySignIn then {} else {
             'user-password': env.secrets.userPassword,
             'admin-password': env.secrets.adminPassword,
           }), labels),
      k.configMap('jupyterhub-config', ns, config, labels),
      k.pvc('tf-hub-db', ns, p.hubStorageSize, p.storageClass, labels=labels),

      k.service('tf-hub', ns, selector, [{ name: 'hub', port: 8081, targetPort: 'hub' }], labels=labels),
      k.statefulSet('tf-hub',
                    ns,
                    selector,
                    {
                      serviceAccountName: 'jupyterhub',
                      securityContext: k.podSecurityContext(fsGroup=1000),
                      containers: [{
                        name: 'hub',
                        image: p.hubImage,
                        // args, not command: the image's entrypoint (tini) stays PID 1 and reaps the
                        // idle culler the hub runs as a child process.
                        args: ['jupyterhub', '--config', configDir + '/jupyterhub_config.py'],
                        ports: [{ name: 'hub', containerPort: 8081 }],
                        env: [
                          k.fieldEnv('POD_NAMESPACE', 'metadata.namespace'),
                          k.secretEnv('CONFIGPROXY_AUTH_TOKEN', 'jupyterhub', 'proxy-token'),
                        ] + (if gatewaySignIn then [] else [
                               k.secretEnv('KFDEPLOY_USER_PASSWORD', 'jupyterhub', 'user-password'),
                               k.secretEnv('KFDEPLOY_ADMIN_PASSWORD', 'jupyterhub', 'admin-password'),
                             ]),
                        resources: k.resources('100m', '512Mi'),
                        readinessProbe: k.httpProbe('/hub/health', 'hub', initialDelaySeconds=5, periodSeconds=10),
                        livenessProbe: k.httpProbe('/hub/health', 'hub', initialDelaySeconds=60, periodSeconds=20, failureThreshold=5),
                        securityContext: k.securityContext(runAsUser=1000),
                        volumeMounts: [
                          { name: 'config', mountPath: configDir, readOnly: true },
                          { name: 'db', mountPath: '/srv/jupyterhub' },
                          k.tmpMount,
                        ],
                      }],
                      volumes: [
                        { name: 'config', configMap: { name: 'jupyterhub-config' } },
                        { name: 'db', persistentVolumeClaim: { claimName: 'tf-hub-db' } },
                        k.tmpVolume,
                      ],
                    },
                    serviceName='tf-hub',
                    labels=labels,
                    // Restart the hub when its configuration changes.
                    podAnnotations={ 'kfdeploy.dev/config-hash': std.md5(std.manifestJson(config)) }),

      k.service('tf-hub-lb',
                ns,
                proxySelector,
                [{ name: 'http', port: 80, targetPort: 'http' }],
                labels=proxyLabels,
                annotations=k.ambassadorConfig(routes)),
      k.httpRoutes(env, routes, proxyLabels),
      k.service('tf-hub-proxy-api', ns, proxySelector, [{ name: 'api', port: 8001, targetPort: 'api' }], labels=proxyLabels),
      k.deployment('tf-hub-proxy', ns, proxySelector, {
        automountServiceAccountToken: false,
        securityContext: k.podSecurityContext(),
        containers: [{
          name: 'proxy',
          image: p.proxyImage,
          command: [
            'configurable-http-proxy',
            '--ip=',
            '--api-ip=',
            '--api-port=8001',
            '--port=8000',
            '--default-target=' + hubURL,
            '--error-target=' + hubURL + '/hub/error',
          ],
          ports: [{ name: 'http', containerPort: 8000 }, { name: 'api', containerPort: 8001 }],
          env: [k.secretEnv('CONFIGPROXY_AUTH_TOKEN', 'jupyterhub', 'proxy-token')],
          resources: k.resources('50m', '128Mi', memoryLimit='256Mi'),
          readinessProbe: k.httpProbe('/_chp_healthz', 'http', initialDelaySeconds=5, periodSeconds=10),
          livenessProbe: k.httpProbe('/_chp_healthz', 'http', initialDelaySeconds=30, periodSeconds=10),
          securityContext: k.securityContext(runAsUser=65534),
        }],
      }, labels=proxyLabels),
    ],
}
