// k8s-dashboard: the Kubernetes Dashboard (routed at /k8s/ui/) and its metrics scraper. The
// Dashboard acts with the token the user signs in with - it has no rights of its own beyond its
// settings - and this component creates a read-only account for this namespace:
//   kubectl -n <namespace> create token k8s-dashboard-viewer
local images = import 'kfdeploy/images.libsonnet';
local k = import 'kfdeploy/k.libsonnet';

{
  description: 'Kubernetes Dashboard (at /k8s/ui/, sign-in by token) with its metrics scraper and a read-only k8s-dashboard-viewer account for this namespace',
  params: {
    image: { default: images.k8sDashboard, description: 'Kubernetes Dashboard image' },
    metricsScraperImage: { default: images.k8sDashboardMetricsScraper, description: 'Dashboard metrics scraper image' },
  },
  render(p, env)::
    local ns = env.namespace;
    local name = 'kubernetes-dashboard';
    local labels = k.labels('k8s-dashboard', name);
    local selector = k.selector('k8s-dashboard', name);
    local scraper = 'dashboard-metrics-scraper';
    local scraperLabels = k.labels('k8s-dashboard', scraper);
    local scraperSelector = k.selector('k8s-dashboard', scraper);
    // As upstream: the Dashboard image's user and group.
    local security = k.securityContext(runAsUser=1001, runAsGroup=2001);
    [
      k.serviceAccount(name, ns, labels),
      // The Dashboard keeps its certificates, CSRF key and settings in these; it fills them in.
      k.emptySecret(name + '-certs', ns, labels),
      k.emptySecret(name + '-csrf', ns, labels),
      k.emptySecret(name + '-key-holder', ns, labels),
      k.configMap(name + '-settings', ns, {}, labels),
      k.role(name, ns, [
        k.rule([''], ['secrets'], ['get', 'update', 'delete'], resourceNames=[name + '-key-holder', name + '-certs', name + '-csrf']),
        k.rule([''], ['configmaps'], ['get', 'update'], resourceNames=[name + '-settings']),
        k.rule([''], ['services'], ['proxy'], resourceNames=[scraper, 'heapster']),
        k.rule([''], ['services/proxy'], ['get'], resourceNames=[scraper, 'http:' + scraper, 'heapster', 'http:heapster:', 'https:heapster:']),
      ], labels),
      k.roleBinding(name, ns, name, [name], labels),
      // Cluster scope, read-only: the scraper collects node and pod metrics of the whole cluster
      // from the metrics API (nodes are cluster-scoped).
      k.clusterAccess(name, ns, [k.rule(['metrics.k8s.io'], ['pods', 'nodes'], k.read)], labels),
      // The viewer: Kubernetes' built-in read-only 'view' role, in this namespace only.
      k.serviceAccount('k8s-dashboard-viewer', ns, labels, automount=false),
      k.roleBinding('k8s-dashboard-viewer', ns, 'view', ['k8s-dashboard-viewer'], labels, roleKind='ClusterRole'),

      k.service(name,
                ns,
                selector,
                [{ name: 'https', port: 443, targetPort: 'https' }],
                labels=labels,
                // The Dashboard serves HTTPS only (self-signed); Emissary originates TLS to it.
                annotations=k.ambassadorConfig([k.mapping('k8s-dashboard', '/k8s/ui/', name, ns, 443, scheme='https')])),
      k.deployment(name, ns, selector, {
        serviceAccountName: name,
        securityContext: k.podSecurityContext(),
        containers: [{
          name: 'kubernetes-dashboard',
          image: p.image,
          args: ['--auto-generate-certificates', '--namespace=' + ns],
          ports: [{ name: 'https', containerPort: 8443 }],
          resources: k.resources('100m', '200Mi', memoryLimit='512Mi'),
          readinessProbe: k.httpProbe('/', 'https', scheme='HTTPS'),
          livenessProbe: k.httpProbe('/', 'https', initialDelaySeconds=30, periodSeconds=10, scheme='HTTPS', timeoutSeconds=30),
          securityContext: security,
          volumeMounts: [{ name: 'certs', mountPath: '/certs' }, k.tmpMount],
        }],
        volumes: [{ name: 'certs', secret: { secretName: name + '-certs' } }, k.tmpVolume],
      }, labels=labels),

      k.service(scraper, ns, scraperSelector, [{ name: 'http', port: 8000, targetPort: 'http' }], labels=scraperLabels),
      k.deployment(scraper, ns, scraperSelector, {
        serviceAccountName: name,
        securityContext: k.podSecurityContext(),
        containers: [{
          name: scraper,
          image: p.metricsScraperImage,
          ports: [{ name: 'http', containerPort: 8000 }],
          resources: k.resources('50m', '64Mi', memoryLimit='256Mi'),
          readinessProbe: k.httpProbe('/', 'http'),
          livenessProbe: k.httpProbe('/', 'http', initialDelaySeconds=30, periodSeconds=10),
          securityContext: security,
          volumeMounts: [k.tmpMount],
        }],
        volumes: [k.tmpVolume],
      }, labels=scraperLabels),
    ],
}
