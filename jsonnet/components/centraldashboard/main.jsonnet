// centraldashboard: the Kubeflow Central Dashboard (github.com/kubeflow/dashboard), the landing
// page (routed at /) that links to the other UIs.
//
// The dashboard asks Kubeflow's access-management service (KFAM, part of Kubeflow Profiles) on
// every page load which namespaces the user may use; it has no setting to work without it
// (app/server.ts and app/api_workgroup.ts@v2.0.0: /api/workgroup/exists and /env-info call KFAM
// in both the identity-aware and the anonymous mode). This platform runs no Profiles: a
// read-only stand-in (kfam.js, in a second container of the pod, from the dashboard's own image)
// answers those two read calls with the app's namespace, and refuses everything that would
// change profiles or contributors.
local images = import 'kfdeploy/images.libsonnet';
local k = import 'kfdeploy/k.libsonnet';

{
  description: 'Kubeflow Central Dashboard (landing page at /, linking to the notebooks, Katib, Argo, training jobs, model registry and Kubernetes dashboard UIs)',
  params: {
    image: { default: images.centralDashboard, description: 'Central Dashboard image (also runs the read-only KFAM stand-in)' },
    menuLinks: {
      default: [
        // Only what the gateway routes by default: the Katib UI (katib.uiRoute) and the model
        // registry (modeldb.route) are open UIs that are routed on request, so their links are
        // added here by whoever routes them.
        { text: 'Notebooks', link: '/hub/', icon: 'book' },
        { text: 'Workflows', link: '/argo/', icon: 'kubeflow:pipeline-centered' },
        { text: 'Training jobs', link: '/tfjobs/', icon: 'maps:directions-run' },
        { text: 'Kubernetes dashboard', link: '/k8s/ui/', icon: 'device:storage' },
      ],
      description: "Sidebar links: objects with text, link (a path the gateway routes) and icon; add { text: 'Experiments (AutoML)', link: '/katib/', icon: 'kubeflow:katib' } with katib.uiRoute, { text: 'Model registry', link: '/model-registry/api/model_registry/v1alpha3/registered_models', icon: 'kubeflow:models' } with modeldb.route",
    },
    userIdHeader: { default: 'kubeflow-userid', description: 'Request header that carries the user identity, when an authenticating proxy sets it' },
  },
  render(p, env)::
    local name = 'centraldashboard';
    local ns = env.namespace;
    local labels = k.labels(name);
    local selector = k.selector(name);
    // Read-only, and the entry page of every user.
    local routes = [k.mapping(name, '/', name, ns, 80, websocket=true, signIn='none', access='read-only', ui='Central dashboard', allowed='signed-in')];
    local kfamPort = 8081;
    local kfamDir = '/etc/kfdeploy/kfam';
    local kfam = {
      'kfam.js': importstr 'kfam.js',
      'config.json': std.manifestJson({
        port: kfamPort,
        namespaces: [ns],
        // KFAM's role names: edit is shown as "contributor" (roleMap in app/api_workgroup.ts).
        role: 'edit',
        clusterAdmin: false,
        // The dashboard's user without an identity header (app/attach_user_middleware.ts).
        anonymousUser: 'anonymous@kubeflow.org',
      }),
    };
    local security = k.securityContext(runAsUser=1000);
    [
      k.serviceAccount(name, ns, labels),
      // What the dashboard reads in its own namespace (app/k8s_service.ts@v2.0.0): its ConfigMap,
      // events, pods and the Kubeflow Application object (for the version shown).
      k.role(name, ns, [
        k.rule([''], ['pods', 'pods/log', 'events'], k.read),
        k.rule(['app.k8s.io'], ['applications'], k.read),
        k.rule([''], ['configmaps'], ['get'], resourceNames=[name + '-config']),
      ], labels),
      k.roleBinding(name, ns, name, [name], labels),
      // Cluster scope, read-only: the dashboard shows the cluster's namespaces and nodes, which
      // are cluster-scoped objects.
      k.clusterAccess(name, ns, [k.rule([''], ['namespaces', 'nodes'], k.read)], labels),
      k.configMap(name + '-config', ns, {
        links: std.manifestJson({
          menuLinks: [{ type: 'item' } + l for l in p.menuLinks],
          externalLinks: [],
          quickLinks: [{ text: l.text, desc: l.text, link: l.link } for l in p.menuLinks],
          documentationItems: [{ text: 'Kubeflow documentation', desc: 'Machine learning on Kubernetes', link: 'https://www.kubeflow.org/docs/' }],
        }),
        settings: std.manifestJson({ DASHBOARD_FORCE_IFRAME: true }),
      }, labels),
      k.configMap(name + '-kfam', ns, kfam, labels),
      k.service(name,
                ns,
                selector,
                [{ name: 'http', port: 80, targetPort: 'http' }],
                labels=labels,
                annotations=k.ambassadorConfig(routes)),
      k.httpRoutes(env, routes, labels),
      k.deployment(name, ns, selector, {
        serviceAccountName: name,
        securityContext: k.podSecurityContext(),
        containers: [
          {
            name: name,
            image: p.image,
            // What the image's `npm start` runs (package.json@v2.0.0: start -> serve -> node
            // dist/server.js), without npm, which writes logs under $HOME on the read-only root.
            command: ['/sbin/tini', '--', 'node', 'dist/server.js'],
            workingDir: '/usr/src/app',
            ports: [{ name: 'http', containerPort: 8082 }],
            // The variables app/server.ts and app/k8s_service.ts@v2.0.0 read.
            env: [
              k.env('USERID_HEADER', p.userIdHeader),
              k.env('USERID_PREFIX', ''),
              k.env('REGISTRATION_FLOW', 'false'),
              k.env('DASHBOARD_CONFIGMAP', name + '-config'),
              k.fieldEnv('POD_NAMESPACE', 'metadata.namespace'),
              k.env('PROFILES_KFAM_SERVICE_HOST', '127.0.0.1'),
              k.env('PROFILES_KFAM_SERVICE_PORT', std.toString(kfamPort)),
            ],
            resources: k.resources('50m', '128Mi', memoryLimit='256Mi'),
            livenessProbe: k.httpProbe('/healthz', 'http', initialDelaySeconds=30, periodSeconds=30),
            readinessProbe: k.httpProbe('/healthz', 'http', initialDelaySeconds=5, periodSeconds=10),
            securityContext: security,
            volumeMounts: [k.tmpMount],
          },
          {
            name: 'kfam',
            image: p.image,
            command: ['node', kfamDir + '/kfam.js', kfamDir + '/config.json'],
            ports: [{ name: 'kfam', containerPort: kfamPort }],
            resources: k.resources('10m', '48Mi', memoryLimit='96Mi'),
            livenessProbe: k.httpProbe('/healthz', 'kfam', initialDelaySeconds=10, periodSeconds=30),
            readinessProbe: k.httpProbe('/healthz', 'kfam', initialDelaySeconds=2, periodSeconds=10),
            securityContext: security,
            volumeMounts: [{ name: 'kfam', mountPath: kfamDir, readOnly: true }],
          },
        ],
        volumes: [k.tmpVolume, { name: 'kfam', configMap: { name: name + '-kfam' } }],
      }, labels=labels, podAnnotations={ 'kfdeploy.dev/config-hash': std.md5(std.manifestJson(kfam)) }),
    ],
}
