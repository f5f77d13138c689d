// k8s-dashboard: the Kubernetes Dashboard 7 (routed at /k8s/ui/). Since 7.0 the Dashboard is four
// programs - web (the UI and its settings), api (Kubernetes resources for the UI), auth (sign-in)
// and metrics-scraper - released only as a Helm chart whose Kong gateway does nothing but route
// paths between them (charts/kubernetes-dashboard/templates/config/gateway.yaml at
// kubernetes-dashboard-7.13.0). Here the platform's gateway routes those paths instead, under
// /k8s/ui/: the web UI calls its APIs by relative paths (modules/web: baseHref "", api/v1), so it
// works under a prefix.
//
// The Dashboard acts with the token the user signs in with; its own accounts only read its
// settings and reach the metrics scraper. This component creates a read-only account for this
// namespace:
//   kubectl -n <namespace> create token k8s-dashboard-viewer
// The web UI keeps the token in a cookie only when served over HTTPS or from localhost
// (modules/web/src/common/services/global/authentication.ts at web/v1.7.0): sign in through an
// HTTPS gateway, or through `kubectl port-forward` to the gateway on localhost.
local images = import 'kfdeploy/images.libsonnet';
local k = import 'kfdeploy/k.libsonnet';

{
  description: 'Kubernetes Dashboard 7 (web, api, auth and metrics scraper, at /k8s/ui/, sign-in by token) with a read-only k8s-dashboard-viewer account for this namespace',
  params: {
    webImage: { default: images.k8sDashboardWeb, description: 'Kubernetes Dashboard web image' },
    apiImage: { default: images.k8sDashboardApi, description: 'Kubernetes Dashboard API image' },
    authImage: { default: images.k8sDashboardAuth, description: 'Kubernetes Dashboard auth image' },
    metricsScraperImage: { default: images.k8sDashboardMetricsScraper, description: 'Kubernetes Dashboard metrics scraper image' },
  },
  render(p, env)::
    local ns = env.namespace;
    local base = 'kubernetes-dashboard';
    local settings = base + '-settings';
    local scraper = base + '-metrics-scraper';
    local port = 8000;  // every module serves plain HTTP on 8000 (values.yaml at the chart's tag)
    local viewerLabels = k.labels('k8s-dashboard');

    // One module: its Service on 8000 and a Deployment of its image, hardened as the chart does
    // (user 1001:2001, read-only root, /tmp an emptyDir), probed on its port.
    local module(role, image, resources, serviceAccount, args=[], mappings=[], probePath=null) =
      local name = base + '-' + role;
      local labels = k.labels('k8s-dashboard', name);
      local selector = k.selector('k8s-dashboard', name);
      local probe(delay, period) =
        if probePath != null then k.httpProbe(probePath, role, initialDelaySeconds=delay, periodSeconds=period)
        else k.tcpProbe(role, initialDelaySeconds=delay, periodSeconds=period);
      [
        k.service(name, ns, selector, [{ name: role, port: port, targetPort: role }], labels=labels,
                  annotations=if std.length(mappings) > 0 then k.ambassadorConfig(mappings) else {}),
        k.httpRoutes(env, mappings, labels),
        k.deployment(name, ns, selector, {
          serviceAccountName: serviceAccount,
          securityContext: k.podSecurityContext(),
          containers: [{
            name: role,
            image: image,
            [if std.length(args) > 0 then 'args']: args,
            // No CSRF_KEY: api and auth each check only the CSRF tokens they issued themselves
            // (the chart routes /api/v1/csrftoken/login to auth and the other actions to api), so
            // each keeps the random key it generates at start (modules/common/csrf/args.go).
            env: [{ name: 'GOMEMLIMIT', valueFrom: { resourceFieldRef: { resource: 'limits.memory', divisor: '1' } } }],
            ports: [{ name: role, containerPort: port }],
            resources: resources,
            readinessProbe: probe(5, 10),
            livenessProbe: probe(30, 20),
            securityContext: k.securityContext(runAsUser=1001, runAsGroup=2001),
            volumeMounts: [k.tmpMount],
          }],
          volumes: [k.tmpVolume],
        }, labels=labels),
      ];

    // The routes of the chart's Kong configuration, under /k8s/ui/.
    local route(name, path, role, websocket=false, timeoutMs=null) =
      k.mapping(name, '/k8s/ui' + path, base + '-' + role, ns, port, rewrite=path, websocket=websocket, timeoutMs=timeoutMs, signIn='kubernetes-token', allowed='admins');
    [
      // web reads and saves the Dashboard's global settings in its ConfigMap.
      k.configMap(settings, ns, {}, viewerLabels),
      k.namespacedAccess(base + '-web', ns, [
        k.rule([''], ['configmaps'], ['get', 'update'], resourceNames=[settings]),
      ], viewerLabels),
      // api reaches the metrics scraper through the API server's service proxy.
      k.namespacedAccess(base + '-api', ns, [
        k.rule([''], ['services/proxy'], ['get'], resourceNames=[scraper, 'http:' + scraper]),
      ], viewerLabels),
      // auth checks the user's token against the API server; its account only gives it the
      // in-cluster address and CA, and has no permissions.
      k.serviceAccount(base + '-auth', ns, viewerLabels),
      k.serviceAccount(scraper, ns, viewerLabels),
      // Cluster scope, read-only: the scraper collects node and pod metrics of the whole cluster
      // from the metrics API (nodes are cluster-scoped).
      k.clusterAccess(scraper, ns, [k.rule(['metrics.k8s.io'], ['pods', 'nodes'], k.read)], viewerLabels),
      // The viewer: Kubernetes' built-in read-only 'view' role, in this namespace only.
      k.serviceAccount('k8s-dashboard-viewer', ns, viewerLabels, automount=false),
      k.roleBinding('k8s-dashboard-viewer', ns, 'view', ['k8s-dashboard-viewer'], viewerLabels, roleKind='ClusterRole'),
    ]
    + module('web', p.webImage,
             args=['--namespace=' + ns, '--settings-config-map-name=' + settings],
             serviceAccount=base + '-web',
             // Every call that reads or writes the cluster carries the user's token and fails
             // without one (modules/common/client/init.go@web/v1.7.0, buildAuthInfo).
             mappings=[k.mapping('k8s-dashboard', '/k8s/ui/', base + '-web', ns, port, signIn='kubernetes-token', ui='Kubernetes Dashboard', allowed='admins')],
             resources=k.resources('20m', '64Mi', memoryLimit='256Mi'))
    + module('api', p.apiImage,
             args=['--namespace=' + ns, '--metrics-scraper-service-name=' + scraper],
             serviceAccount=base + '-api',
             // Pod logs and shells stream over long requests and WebSockets (/api/sockjs/).
             mappings=[route('k8s-dashboard-api', '/api/', 'api', websocket=true, timeoutMs=300000)],
             resources=k.resources('50m', '128Mi', memoryLimit='400Mi'))
    + module('auth', p.authImage,
             serviceAccount=base + '-auth',
             mappings=[
               route('k8s-dashboard-auth-login', '/api/v1/login', 'auth'),
               route('k8s-dashboard-auth-csrf', '/api/v1/csrftoken/login', 'auth'),
               route('k8s-dashboard-auth-me', '/api/v1/me', 'auth'),
             ],
             resources=k.resources('20m', '64Mi', memoryLimit='256Mi'))
    + module('metrics-scraper', p.metricsScraperImage,
             serviceAccount=scraper,
             resources=k.resources('20m', '64Mi', memoryLimit='256Mi'),
             probePath='/'),
}
