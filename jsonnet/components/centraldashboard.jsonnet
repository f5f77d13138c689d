// centraldashboard: the Kubeflow Central Dashboard, the landing page (routed at /) that links to
// the other UIs.
local images = import 'kfdeploy/images.libsonnet';
local k = import 'kfdeploy/k.libsonnet';

{
  description: 'Kubeflow Central Dashboard (landing page at /, linking to the notebooks, Katib, Argo, training jobs, model registry and Kubernetes dashboard UIs)',
  params: {
    image: { default: images.centralDashboard, description: 'Central Dashboard image' },
    menuLinks: {
      default: [
        { text: 'Notebooks', link: '/hub/', icon: 'book' },
        { text: 'Experiments (AutoML)', link: '/katib/', icon: 'kubeflow:katib' },
        { text: 'Workflows', link: '/argo/', icon: 'kubeflow:pipeline-centered' },
        { text: 'Training jobs', link: '/tfjobs/', icon: 'maps:directions-run' },
        { text: 'Model registry', link: '/model-registry/api/model_registry/v1alpha3/registered_models', icon: 'kubeflow:models' },
        { text: 'Kubernetes dashboard', link: '/k8s/ui/', icon: 'device:storage' },
      ],
      description: 'Sidebar links: objects with text, link (a path served by ambassador) and icon',
    },
    userIdHeader: { default: 'kubeflow-userid', description: 'Request header that carries the user identity, when an authenticating proxy sets it' },
  },
  render(p, env)::
    local name = 'centraldashboard';
    local labels = k.labels(name);
    local selector = k.selector(name);
    [
      k.serviceAccount(name, env.namespace, labels),
      k.role(name, env.namespace, [
        k.rule([''], ['pods', 'pods/log', 'events'], k.read),
        k.rule([''], ['configmaps'], ['get'], resourceNames=[name + '-config']),
      ], labels),
      k.roleBinding(name, env.namespace, name, [name], labels),
      // Cluster scope, read-only: the dashboard shows the cluster's namespaces and nodes, which
      // are cluster-scoped objects.
      k.clusterAccess(name, env.namespace, [k.rule([''], ['namespaces', 'nodes'], k.read)], labels),
      k.configMap(name + '-config', env.namespace, {
        links: std.manifestJson({
          menuLinks: [{ type: 'item' } + l for l in p.menuLinks],
          externalLinks: [],
          quickLinks: [{ text: l.text, desc: l.text, link: l.link } for l in p.menuLinks],
          documentationItems: [{ text: 'Kubeflow documentation', desc: 'Machine learning on Kubernetes', link: 'https://www.kubeflow.org/docs/' }],
        }),
        settings: std.manifestJson({ DASHBOARD_FORCE_IFRAME: true }),
      }, labels),
      k.service(name,
                env.namespace,
                selector,
                [{ name: 'http', port: 80, targetPort: 'http' }],
                labels=labels,
                annotations=k.ambassadorConfig([k.mapping(name, '/', name, env.namespace, 80, websocket=true)])),
      k.deployment(name, env.namespace, selector, {
        serviceAccountName: name,
        securityContext: k.podSecurityContext(),
        containers: [{
          name: name,
          image: p.image,
          ports: [{ name: 'http', containerPort: 8082 }],
          env: [
            k.env('USERID_HEADER', p.userIdHeader),
            k.env('USERID_PREFIX', ''),
            k.env('REGISTRATION_FLOW', 'false'),
            k.env('DASHBOARD_LINKS_CONFIGMAP', name + '-config'),
            k.env('PROFILES_KFAM_SERVICE_HOST', 'profiles-kfam.' + env.namespace),
          ],
          resources: k.resources('50m', '128Mi', memoryLimit='256Mi'),
          livenessProbe: k.httpProbe('/healthz', 'http', initialDelaySeconds=30, periodSeconds=30),
          readinessProbe: k.httpProbe('/healthz', 'http', initialDelaySeconds=5, periodSeconds=10),
          securityContext: k.securityContext(runAsUser=1000),
          volumeMounts: [k.tmpMount],
        }],
        volumes: [k.tmpVolume],
      }, labels=labels),
    ],
}
