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
// Service with the gateway's own resources: its Listener, its Host and a Module.
//
// TLS (the default): one Listener on 8443 with protocol HTTPS (TLS;HTTP;TCP) serves both TLS
// and cleartext on the same port, since Emissary adds the TLS inspector and a cleartext filter
// chain next to the Host's TLS chain (python/ambassador/src/ambassador/envoy/v3/v3listener.py
// @v4.1.0, compute_httpchains). The Service's ports 443 and 80 both lead there, so a cleartext
// request on either (or on a node port) is redirected to https:// on the port it came in on.
// The Host's certificate is Secret ambassador-tls, which kfdeploy issues from the app's CA
// (annotations kfdeploy.dev/certificate*: the names it must cover) unless the user supplies one.
local images = import 'kfdeploy/images.libsonnet';
local k = import 'kfdeploy/k.libsonnet';

local serviceTypes = ['ClusterIP', 'NodePort', 'LoadBalancer'];

{
  description: 'Emissary-ingress (Ambassador successor) gateway, HTTPS with a certificate from the app CA by default, routing /, /hub/, /user/, /argo/, /katib/, /tfjobs/, /k8s/ui/, /model-registry/ and /notebook/ to the UIs',
  params: {
    image: { default: images.emissary, description: 'Emissary-ingress image' },
    replicas: { default: 3, description: 'Number of gateway replicas' },
    serviceType: { default: 'NodePort', description: 'Type of the gateway Service: ClusterIP, NodePort or LoadBalancer' },
    nodePort: { default: null, description: 'Node port of the gateway (30000-32767) for NodePort/LoadBalancer; null lets Kubernetes choose' },
    externalIPs: { default: [], description: 'External IPs on which the gateway Service also accepts traffic' },
    hostname: { default: '', description: "DNS name by which users reach the gateway (in its certificate and the URLs kfdeploy prints); '' for none" },
    tls: { default: true, description: 'Serve HTTPS (false: plain HTTP only, e.g. behind a proxy that terminates TLS)' },
    httpRedirect: { default: true, description: 'Redirect cleartext HTTP requests to HTTPS (false: route them too)' },
    tlsSecretName: { default: '', description: "An existing kubernetes.io/tls Secret of the namespace to serve instead of the certificate kfdeploy issues ('' for kfdeploy's)" },
    tlsCertFile: { default: '', description: "PEM certificate (chain) file to serve, relative to the app directory, with tlsKeyFile; read by generate ('' for kfdeploy's)" },
    tlsKeyFile: { default: '', description: "PEM private key file of tlsCertFile, relative to the app directory" },
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
    assert std.isBoolean(p.tls) && std.isBoolean(p.httpRedirect) : 'ambassador: tls and httpRedirect must be true or false';
    assert std.isString(p.hostname) && std.length(std.findSubstr('/', p.hostname)) == 0 && std.length(std.findSubstr(':', p.hostname)) == 0 : 'ambassador: hostname must be a DNS name without scheme or port, got %s' % [p.hostname];
    assert (p.tlsCertFile == '') == (p.tlsKeyFile == '') : 'ambassador: tlsCertFile and tlsKeyFile go together';
    assert p.tlsSecretName == '' || p.tlsCertFile == '' : 'ambassador: set tlsSecretName or tlsCertFile/tlsKeyFile, not both';
    local v3 = { apiVersion: 'getambassador.io/v3alpha1' };
    local tlsSecret = if p.tlsSecretName != '' then p.tlsSecretName else 'ambassador-tls';
    local listenPort = if p.tls then 8443 else 8080;
    // Where Emissary accepts connections; hostBinding SELF binds the Hosts of this namespace.
    // XFP: a request is secure when X-Forwarded-Proto says https, which Envoy, the edge here,
    // sets from the connection (crd_listener.go@v4.1.0, XFPSecurityModelType).
    local listeners = [
      v3 {
        kind: 'Listener',
        name: if p.tls then 'ambassador-https' else 'ambassador-http',
        port: listenPort,
        protocol: if p.tls then 'HTTPS' else 'HTTP',
        securityModel: 'XFP',
        hostBinding: { namespace: { from: 'SELF' } },
      },
    ];
    // Which host names are served and how: one catch-all, since users reach the gateway by
    // addresses as well as by name (the certificate covers them). Emissary's default insecure
    // action is Redirect (irhost.py@v4.1.0, setup); it is written out either way.
    local hosts = [
      if p.tls then
        v3 {
          kind: 'Host',
          name: 'ambassador-tls',
          hostname: '*',
          tlsSecret: { name: tlsSecret },
          requestPolicy: { insecure: { action: if p.httpRedirect then 'Redirect' else 'Route' } },
        }
      else
        v3 { kind: 'Host', name: 'ambassador-any', hostname: '*', requestPolicy: { insecure: { action: 'Route' } } },
    ];
    // The names the issued certificate covers: the Service's in-cluster names, localhost (for
    // kubectl port-forward), the hostname and externalIPs; with a node port, apply adds the
    // nodes' addresses.
    local svcNames = ['ambassador', 'ambassador.' + env.namespace, 'ambassador.' + env.namespace + '.svc', 'ambassador.' + env.namespace + '.svc.cluster.local'];
    local certAnnotations = {
      'kfdeploy.dev/certificate': 'ambassador/tls',
      'kfdeploy.dev/certificate-dns-names': std.join(',', [p.hostname for _ in [1] if p.hostname != ''] + svcNames + ['localhost']),
      'kfdeploy.dev/certificate-ip-addresses': std.join(',', ['127.0.0.1', '::1'] + p.externalIPs),
      [if p.serviceType != 'ClusterIP' then 'kfdeploy.dev/certificate-node-addresses']: 'true',
      [if p.tlsCertFile != '' then 'kfdeploy.dev/certificate-files']: p.tlsCertFile + ',' + p.tlsKeyFile,
    };
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
      // The gateway. With TLS both ports lead to the one listener (see above); nodePort is the
      // HTTPS port's. The annotations tell kfdeploy's URL list how users reach it.
      k.service(name, env.namespace, selector, (
        if p.tls then [
          { name: 'https', port: 443, targetPort: 'https' } + (if p.nodePort != null then { nodePort: p.nodePort } else {}),
          { name: 'http', port: 80, targetPort: 'https' },
        ] else [
          { name: 'http', port: 80, targetPort: 'http' } + (if p.nodePort != null then { nodePort: p.nodePort } else {}),
        ]
      ), p.serviceType, labels, annotations={
        'kfdeploy.dev/gateway-scheme': if p.tls then 'https' else 'http',
        [if p.hostname != '' then 'kfdeploy.dev/gateway-hostname']: p.hostname,
      }) + {
        spec+: { [if std.length(p.externalIPs) > 0 then 'externalIPs']: p.externalIPs },
      },
    ] + (
      // kfdeploy's certificate (or the user's files), filled in at apply; none for a Secret the
      // user manages.
      if p.tls && p.tlsSecretName == '' then
        [k.object('v1', 'Secret', 'ambassador-tls', env.namespace, labels, certAnnotations) + { type: 'kubernetes.io/tls' }]
      else []
    ) + [
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
            { name: if p.tls then 'https' else 'http', containerPort: listenPort },
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
