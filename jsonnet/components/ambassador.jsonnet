// ambassador: the platform's entry point. Emissary-ingress (Ambassador's successor) routes URL
// prefixes to the UIs of the other components.
//
// Routing design: Emissary runs in single-namespace mode and reads getambassador.io/v3alpha1
// resources from the getambassador.io/config annotation of the namespace's Services (the way
// Kubeflow v0.3 configured Ambassador). Each component annotates its own Service with its
// Mapping, so routes come and go with the components, and no Emissary CRD (nor its conversion
// webhook) is needed on the cluster. This component annotates its admin Service with the
// Listener (plain HTTP on 8080, behind the Service's port 80), a catch-all Host that routes
// cleartext requests, and a Module that turns off the diagnostics UI.
local images = import 'kfdeploy/images.libsonnet';
local k = import 'kfdeploy/k.libsonnet';

local serviceTypes = ['ClusterIP', 'NodePort', 'LoadBalancer'];

{
  description: 'Emissary-ingress (Ambassador successor) gateway routing /, /hub/, /user/, /argo/, /katib/, /tfjobs/, /k8s/ui/, /model-registry/ and /notebook/ to the UIs',
  params: {
    image: { default: images.emissary, description: 'Emissary-ingress image' },
    replicas: { default: 3, description: 'Number of gateway replicas' },
    serviceType: { default: 'NodePort', description: 'Type of the gateway Service: ClusterIP, NodePort or LoadBalancer' },
    nodePort: { default: null, description: 'Node port of the gateway (30000-32767) for NodePort/LoadBalancer; null lets Kubernetes choose' },
    externalIPs: { default: [], description: 'External IPs on which the gateway Service also accepts traffic' },
    cpu: { default: '200m', description: 'CPU request per replica' },
    memory: { default: '300Mi', description: 'Memory request and limit per replica' },
  },
  render(p, env)::
    assert std.member(serviceTypes, p.serviceType) : 'ambassador: serviceType must be one of %s, got %s' % [std.join(', ', serviceTypes), p.serviceType];
    assert p.nodePort == null || p.serviceType != 'ClusterIP' : 'ambassador: nodePort needs serviceType NodePort or LoadBalancer';
    assert p.nodePort == null || (std.isNumber(p.nodePort) && p.nodePort >= 30000 && p.nodePort <= 32767) : 'ambassador: nodePort must be a number in 30000-32767, got %s' % [p.nodePort];
    local name = 'ambassador';
    local labels = k.labels('ambassador');
    local selector = k.selector('ambassador');
    local gateway = [
      { apiVersion: 'getambassador.io/v3alpha1', kind: 'Listener', name: 'ambassador-http', port: 8080, protocol: 'HTTP', securityModel: 'XFP', hostBinding: { namespace: { from: 'SELF' } } },
      { apiVersion: 'getambassador.io/v3alpha1', kind: 'Host', name: 'ambassador-any', hostname: '*', requestPolicy: { insecure: { action: 'Route' } } },
      { apiVersion: 'getambassador.io/v3alpha1', kind: 'Module', name: 'ambassador', config: { diagnostics: { enabled: false } } },
    ];
    [
      k.serviceAccount(name, env.namespace, labels),
      // Emissary watches its own namespace only (AMBASSADOR_SINGLE_NAMESPACE): Services and
      // Endpoints to route, Secrets for TLS certificates, its own resources if their CRDs exist.
      k.role(name, env.namespace, [
        k.rule([''], ['services', 'endpoints', 'secrets', 'configmaps'], k.read),
        k.rule(['discovery.k8s.io'], ['endpointslices'], k.read),
        k.rule(['networking.k8s.io'], ['ingresses'], k.read),
        k.rule(['networking.k8s.io'], ['ingresses/status'], ['update']),
        k.rule(['getambassador.io'], ['*'], k.read + ['update', 'patch']),
        // Emissary reads its namespace's UID for its cluster ID; a RoleBinding can grant that.
        k.rule([''], ['namespaces'], ['get'], resourceNames=[env.namespace]),
      ], labels),
      k.roleBinding(name, env.namespace, name, [name], labels),
      // Cluster scope, read-only: Emissary looks up which getambassador.io CRDs exist, and
      // CustomResourceDefinitions are cluster-scoped objects that no Role can grant.
      k.clusterAccess(name, env.namespace, [
        k.rule(['apiextensions.k8s.io'], ['customresourcedefinitions'], k.read),
      ], labels),
      k.service(name, env.namespace, selector, [
        { name: 'http', port: 80, targetPort: 'http' } + (if p.nodePort != null then { nodePort: p.nodePort } else {}),
      ], p.serviceType, labels) + {
        spec+: { [if std.length(p.externalIPs) > 0 then 'externalIPs']: p.externalIPs },
      },
      // Health and readiness only; never exposed outside the cluster.
      k.service(name + '-admin',
                env.namespace,
                selector,
                [{ name: 'admin', port: 8877, targetPort: 'admin' }],
                labels=labels,
                annotations=k.ambassadorConfig(gateway)),
      k.deployment(name, env.namespace, selector, {
        serviceAccountName: name,
        securityContext: k.podSecurityContext(),
        terminationGracePeriodSeconds: 30,
        affinity: {
          // Spread the replicas over nodes when possible.
          podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{
            weight: 100,
            podAffinityTerm: { labelSelector: { matchLabels: selector }, topologyKey: 'kubernetes.io/hostname' },
          }] },
        },
        containers: [{
          name: 'ambassador',
          image: p.image,
          ports: [
            { name: 'http', containerPort: 8080 },
            { name: 'admin', containerPort: 8877 },
          ],
          env: [
            k.fieldEnv('AMBASSADOR_NAMESPACE', 'metadata.namespace'),
            k.env('AMBASSADOR_SINGLE_NAMESPACE', 'true'),
            // No usage reports to the vendor (Kubeflow's own reporting is the spartakus component).
            k.env('SCOUT_DISABLE', '1'),
          ],
          resources: k.resources(p.cpu, p.memory),
          livenessProbe: k.httpProbe('/ambassador/v0/check_alive', 'admin', initialDelaySeconds=30, periodSeconds=10),
          readinessProbe: k.httpProbe('/ambassador/v0/check_ready', 'admin', initialDelaySeconds=10, periodSeconds=10),
          // Not read-only: Emissary writes its generated Envoy configuration, snapshots and
          // bootstrap file under /ambassador in the image at run time.
          securityContext: k.securityContext(runAsUser=8888, readOnlyRoot=false),
        }],
      }, replicas=p.replicas, labels=labels),
    ],
}
