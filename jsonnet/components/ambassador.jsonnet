// ambassador: the platform's entry point. Emissary-ingress (Ambassador's successor) routes URL
// prefixes to the UIs of the other components.
//
// Routing design: Emissary runs in single-namespace mode and reads getambassador.io/v3alpha1
// resources from the getambassador.io/config annotation of the namespace's Services (the way
// Kubeflow v0.3 configured Ambassador). Each component annotates its own Service with its
// Mapping, so routes come and go with the components, and no Emissary CRD (nor its conversion
// webhook) is needed on the cluster: Emissary v4 skips the kinds the API server doesn't serve
// (cmd/entrypoint/interesting_types.go@v4.1.0) and validates annotations against the schemas
// built into it (pkg/snapshot/v1/annotations.go@v4.1.0). This component annotates its admin
// Service with the gateway's own resources: its Listeners (plain HTTP on 8080, behind the
// Service's port 80), its Hosts (a catch-all that routes cleartext requests), and a Module.
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
    defaultTimeoutMs: { default: 60000, description: "Response timeout (ms) of routes that set none themselves (Emissary's own default is 3000)" },
    cpu: { default: '200m', description: 'CPU request per replica' },
    memory: { default: '300Mi', description: 'Memory request per replica' },
    // Envoy and Emissary's Python configuration compiler share the container; upstream's chart
    // recommends 300Mi requested, 600Mi limit (charts/emissary-ingress/values.yaml@v4.1.0).
    memoryLimit: { default: '600Mi', description: 'Memory limit per replica' },
  },
  render(p, env)::
    assert std.member(serviceTypes, p.serviceType) : 'ambassador: serviceType must be one of %s, got %s' % [std.join(', ', serviceTypes), p.serviceType];
    assert p.nodePort == null || p.serviceType != 'ClusterIP' : 'ambassador: nodePort needs serviceType NodePort or LoadBalancer';
    assert p.nodePort == null || (std.isNumber(p.nodePort) && p.nodePort >= 30000 && p.nodePort <= 32767) : 'ambassador: nodePort must be a number in 30000-32767, got %s' % [p.nodePort];
    local name = 'ambassador';
    local labels = k.labels('ambassador');
    local selector = k.selector('ambassador');
    assert std.isNumber(p.defaultTimeoutMs) && p.defaultTimeoutMs >= 0 : 'ambassador: defaultTimeoutMs must be a number of milliseconds (0: none), got %s' % [p.defaultTimeoutMs];
    local v3 = { apiVersion: 'getambassador.io/v3alpha1' };
    // Where Emissary accepts connections. A TLS Listener (protocol HTTPS, its own container
    // and Service port) joins this list; hostBinding SELF binds the Hosts of this namespace.
    local listeners = [
      v3 { kind: 'Listener', name: 'ambassador-http', port: 8080, protocol: 'HTTP', securityModel: 'XFP', hostBinding: { namespace: { from: 'SELF' } } },
    ];
    // Which host names are served and how. A Host with a hostname and tlsSecret joins this list
    // for TLS; the catch-all below keeps routing cleartext requests for every other name.
    local hosts = [
      v3 { kind: 'Host', name: 'ambassador-any', hostname: '*', requestPolicy: { insecure: { action: 'Route' } } },
    ];
    local module = v3 {
      kind: 'Module',
      name: 'ambassador',
      config: {
        diagnostics: { enabled: false },
        // Routes of the components set timeout_ms themselves (k.mapping); this covers any other.
        cluster_request_timeout_ms: p.defaultTimeoutMs,
      },
    };
    local gateway = listeners + hosts + [module];
    [
      k.serviceAccount(name, env.namespace, labels),
      // Emissary watches its own namespace only (AMBASSADOR_SINGLE_NAMESPACE): Services and
      // Endpoints to route, Secrets for TLS certificates, ConfigMaps, Ingresses, its own
      // resources if their CRDs exist (cmd/entrypoint/interesting_types.go@v4.1.0). Which kinds
      // exist it learns from discovery, which needs no grant; it reads no CRDs.
      k.role(name, env.namespace, [
        k.rule([''], ['services', 'endpoints', 'secrets', 'configmaps'], k.read),
        k.rule(['networking.k8s.io'], ['ingresses'], k.read),
        k.rule(['networking.k8s.io'], ['ingresses/status'], ['update']),
        k.rule(['getambassador.io'], ['*'], k.read + ['update', 'patch']),
        // Emissary reads its namespace's UID for its cluster ID; a RoleBinding can grant that.
        k.rule([''], ['namespaces'], ['get'], resourceNames=[env.namespace]),
      ], labels),
      k.roleBinding(name, env.namespace, name, [name], labels),
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
            // Any non-empty value turns it on (cmd/entrypoint/helpers.go@v4.1.0, envbool).
            k.env('AMBASSADOR_SINGLE_NAMESPACE', 'true'),
          ],
          resources: k.resources(p.cpu, p.memory, memoryLimit=p.memoryLimit),
          livenessProbe: k.httpProbe('/ambassador/v0/check_alive', 'admin', initialDelaySeconds=30, periodSeconds=10),
          readinessProbe: k.httpProbe('/ambassador/v0/check_ready', 'admin', initialDelaySeconds=10, periodSeconds=10),
          // Not read-only: Emissary writes its generated Envoy configuration, snapshots and
          // bootstrap file under /ambassador in the image at run time, and HOME is /tmp/ambassador
          // (docker/emissary/Dockerfile@v4.1.0). 8888 is the image's ambassador user.
          securityContext: k.securityContext(runAsUser=8888, readOnlyRoot=false),
        }],
      }, replicas=p.replicas, labels=labels),
    ],
}
