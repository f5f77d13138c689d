// gateway: the platform's entry point through the Gateway API, with one sign-in in front of
// every UI. Traefik implements the Gateway (GatewayClass controller traefik.io/gateway-controller)
// and oauth2-proxy signs users in, through an identity provider (OIDC) or as static users of an
// htpasswd file; an app has this component or `ambassador`, never both.
//
// Routing: the other components render their routes as HTTPRoutes of the Gateway's HTTPS listener
// when this component is in the app (k.libsonnet, httpRoutes: the same definitions as their
// Emissary Mappings). Each route's rule goes through a Traefik ForwardAuth Middleware of the
// namespace, referenced as an ExtensionRef filter: `signin` lets any signed-in user through,
// `signin-admins` only the admin group. Both ask oauth2-proxy's proxy path (upstream static://202):
// a signed-in user gets 202 and the X-Auth-Request-* headers, which Traefik copies onto the request
// (after removing any the client sent); a browser without a session gets the redirect to sign in,
// a program 401, a user outside the group 403. Only /oauth2/ (the sign-in flow) has no sign-in.
//
// Traefik (v3.7) reads Gateway API objects (provider kubernetesGateway) and its own Middlewares
// (provider kubernetesCRD, which must run in the same process for the ExtensionRef filter to
// resolve), both restricted to the app's namespace, and sends traffic to Services' cluster IPs
// (nativeLB) rather than to endpoints. A Gateway listener binds to the entryPoint whose address
// ends in the listener's port, so the two are the same numbers here (web 8000, websecure 8443).
//
// TLS: the HTTPS listener serves Secret gateway-tls, which kfdeploy issues from a CA of the app
// (annotations kfdeploy.dev/certificate*), as for ambassador. The HTTP listener only redirects.
//
// Needs on the cluster: the Gateway API v1.6.1 standard-channel CRDs and Traefik's traefik.io
// CRDs. Traefik's informers wait forever for a kind the API server does not serve.
local images = import 'kfdeploy/images.libsonnet';
local k = import 'kfdeploy/k.libsonnet';

local serviceTypes = ['ClusterIP', 'NodePort', 'LoadBalancer'];

{
  description: 'Gateway API gateway (Traefik) with one sign-in (oauth2-proxy: OIDC or static users) in front of every UI route, HTTPS with a certificate from the app CA, HTTP redirected; the gateway of the presets',
  params: {
    traefikImage: { default: images.traefik, description: 'Traefik image' },
    oauth2ProxyImage: { default: images.oauth2Proxy, description: 'oauth2-proxy image' },
    replicas: { default: 2, description: 'Number of Traefik replicas' },
    signInReplicas: { default: 2, description: 'Number of oauth2-proxy replicas (sessions live in the cookie, so any replica serves any user)' },
    serviceType: { default: 'NodePort', description: 'Type of the gateway Service: ClusterIP, NodePort or LoadBalancer' },
    nodePort: { default: null, description: 'Node port of the HTTPS port (30000-32767) for NodePort/LoadBalancer; null lets Kubernetes choose' },
    externalIPs: { default: [], description: 'External IPs on which the gateway Service also accepts traffic' },
    hostname: { default: '', description: "DNS name by which users reach the gateway (in its certificate, the URLs kfdeploy prints and the sign-in's redirect URL); '' for none" },
    redirectPort: { default: null, description: 'Port of the https:// URL that cleartext requests are redirected to; null: 443' },
    tlsSecretName: { default: '', description: "An existing kubernetes.io/tls Secret of the namespace to serve instead of the certificate kfdeploy issues ('' for kfdeploy's)" },
    tlsCertFile: { default: '', description: "PEM certificate (chain) file to serve, relative to the app directory, with tlsKeyFile; read by generate ('' for kfdeploy's)" },
    tlsKeyFile: { default: '', description: 'PEM private key file of tlsCertFile, relative to the app directory' },
    oidcIssuerURL: { default: '', description: "Issuer URL of the OpenID Connect identity provider; '' for static users only" },
    oidcClientID: { default: 'kubeflow', description: "The gateway's client ID at the identity provider (its secret: oidcClientSecret in secrets.yaml)" },
    oidcScope: { default: 'openid email profile groups', description: 'Scopes asked of the identity provider; groups must be among them for group checks' },
    oidcGroupsClaim: { default: 'groups', description: "Claim of the ID token that lists the user's groups" },
    oidcCodeChallengeMethod: { default: 'S256', description: "PKCE method of the sign-in's authorization requests (S256 or plain); '' for a provider that refuses PKCE" },
    emailDomains: { default: ['*'], description: "E-mail domains of OIDC users who may sign in ('*': any)" },
    allowedGroups: { default: [], description: 'Groups of which an OIDC user must be in one to sign in at all ([]: any)' },
    adminGroup: { default: 'admins', description: 'Group whose members may use the UIs that administer (Katib, Model Registry, Argo, Headlamp, Kubernetes Dashboard)' },
    staticUsers: { default: ['admin'], description: "Names of static users (htpasswd, bcrypt); generate keeps each one's password in secrets.yaml (gateway/htpasswd.password.NAME); [] for none" },
    staticUserGroups: { default: null, description: 'Groups of every static user (oauth2-proxy gives them all the same); null: [adminGroup]' },
    cpu: { default: '100m', description: 'CPU request per Traefik replica' },
    memory: { default: '128Mi', description: 'Memory request per Traefik replica' },
    memoryLimit: { default: '256Mi', description: 'Memory limit per Traefik replica' },
  },
  secrets: {
    cookieSecret: { description: "Key of oauth2-proxy's session cookies (32 URL-safe base64 characters, taken as 32 bytes)" },
    oidcClientSecret: { description: "The gateway's client secret at the identity provider: replace the generated value with the one the provider issued" },
  },
  render(p, env)::
    assert std.member(serviceTypes, p.serviceType) : 'gateway: serviceType must be one of %s, got %s' % [std.join(', ', serviceTypes), p.serviceType];
    assert p.nodePort == null || p.serviceType != 'ClusterIP' : 'gateway: nodePort needs serviceType NodePort or LoadBalancer';
    assert p.nodePort == null || (std.isNumber(p.nodePort) && p.nodePort >= 30000 && p.nodePort <= 32767) : 'gateway: nodePort must be a number in 30000-32767, got %s' % [p.nodePort];
    assert p.redirectPort == null || (std.isNumber(p.redirectPort) && p.redirectPort >= 1 && p.redirectPort <= 65535) : 'gateway: redirectPort must be a port number, got %s' % [p.redirectPort];
    assert std.isString(p.hostname) && std.length(std.findSubstr('/', p.hostname)) == 0 && std.length(std.findSubstr(':', p.hostname)) == 0 : 'gateway: hostname must be a DNS name without scheme or port, got %s' % [p.hostname];
    assert (p.tlsCertFile == '') == (p.tlsKeyFile == '') : 'gateway: tlsCertFile and tlsKeyFile go together';
    assert p.tlsSecretName == '' || p.tlsCertFile == '' : 'gateway: set tlsSecretName or tlsCertFile/tlsKeyFile, not both';
    assert p.oidcIssuerURL == '' || std.startsWith(p.oidcIssuerURL, 'https://') || std.startsWith(p.oidcIssuerURL, 'http://') : 'gateway: oidcIssuerURL must be an http(s) URL, got %s' % [p.oidcIssuerURL];
    assert p.oidcIssuerURL != '' || std.length(p.staticUsers) > 0 : 'gateway: set oidcIssuerURL or staticUsers, or nobody can sign in';
    assert std.member(['', 'S256', 'plain'], p.oidcCodeChallengeMethod) : "gateway: oidcCodeChallengeMethod must be S256, plain or '', got %s" % [p.oidcCodeChallengeMethod];
    assert std.isString(p.adminGroup) && p.adminGroup != '' && std.length(std.findSubstr(',', p.adminGroup)) == 0 : 'gateway: adminGroup must be one group name, got %s' % [p.adminGroup];
    assert std.all([std.isString(u) && std.length(u) > 0 && std.length(std.findSubstr(':', u)) == 0 && std.length(std.findSubstr(',', u)) == 0 for u in p.staticUsers]) : 'gateway: staticUsers must be names without ":" or ","';
    local ns = env.namespace;
    local gw = k.gateway;
    local labels = k.labels('gateway', 'traefik');
    local selector = k.selector('gateway', 'traefik');
    local proxyName = 'oauth2-proxy';
    local proxyLabels = k.labels('gateway', proxyName);
    local proxySelector = k.selector('gateway', proxyName);
    local proxyPort = 4180;
    // Listener ports = entryPoint ports (see above); 8080 is Traefik's own entryPoint (ping).
    local ports = { web: 8000, websecure: 8443, traefik: 8080 };
    local tlsSecret = if p.tlsSecretName != '' then p.tlsSecretName else 'gateway-tls';
    local oidc = p.oidcIssuerURL != '';
    local staticGroups = if p.staticUserGroups != null then p.staticUserGroups else [p.adminGroup];
    local svcNames = ['gateway', 'gateway.' + ns, 'gateway.' + ns + '.svc', 'gateway.' + ns + '.svc.cluster.local'];
    local certAnnotations = {
      'kfdeploy.dev/certificate': 'gateway/tls',
      'kfdeploy.dev/certificate-dns-names': std.join(',', [p.hostname for _ in [1] if p.hostname != ''] + svcNames + ['localhost']),
      'kfdeploy.dev/certificate-ip-addresses': std.join(',', ['127.0.0.1', '::1'] + p.externalIPs),
      [if p.serviceType != 'ClusterIP' then 'kfdeploy.dev/certificate-node-addresses']: 'true',
      [if p.tlsCertFile != '' then 'kfdeploy.dev/certificate-files']: p.tlsCertFile + ',' + p.tlsKeyFile,
    };
    // ForwardAuth asks oauth2-proxy's proxy path, which answers a browser without a session with
    // the redirect to sign in (its /oauth2/auth only answers 401). trustForwardHeader false:
    // Traefik sets X-Forwarded-* itself, from the connection.
    local signIn(name, query) = k.object('traefik.io/v1alpha1', 'Middleware', name, ns, proxyLabels) + {
      spec: { forwardAuth: {
        address: 'http://%s.%s.svc:%d/%s' % [proxyName, ns, proxyPort, query],
        trustForwardHeader: false,
        // oauth2-proxy's answers (202, its sign-in and error pages) are a few KiB; Traefik reads
        // them whole into memory, without a limit unless one is set.
        maxResponseBodySize: 1048576,
        authResponseHeaders: ['X-Auth-Request-User', 'X-Auth-Request-Email', 'X-Auth-Request-Groups', 'X-Auth-Request-Preferred-Username'],
      } },
    };
    local secretDir = '/etc/oauth2-proxy';
    // Static users only: oauth2-proxy's own sign-in page always shows a button for its provider,
    // which has none here (pkg/app/pagewriter/sign_in.html@v7.15.6), so the page is ours.
    local ownSignInPage = !oidc && std.length(p.staticUsers) > 0;
    local templatesDir = '/etc/oauth2-proxy-templates';
    [
      k.serviceAccount('traefik', ns, labels),
      // Namespaced where Traefik allows it (providers' `namespaces`): Gateway API objects and its
      // Middlewares, the Services and EndpointSlices they route to, Secrets for certificates,
      // ConfigMaps (BackendTLSPolicy CAs); status of what it accepts. Its informers list every kind
      // of both providers (pkg/provider/kubernetes/{gateway,crd}/client.go@v3.7.13), so all are
      // granted, even those no object of the app uses.
      k.role('traefik', ns, [
        k.rule([''], ['services', 'secrets', 'configmaps'], k.read),
        k.rule(['discovery.k8s.io'], ['endpointslices'], k.read),
        k.rule(['gateway.networking.k8s.io'], ['gateways', 'httproutes', 'grpcroutes', 'tlsroutes', 'tcproutes', 'referencegrants', 'backendtlspolicies'], k.read),
        k.rule(['gateway.networking.k8s.io'], ['gateways/status', 'httproutes/status', 'grpcroutes/status', 'tlsroutes/status', 'tcproutes/status', 'backendtlspolicies/status'], ['update']),
        k.rule(['traefik.io'], ['ingressroutes', 'ingressroutetcps', 'ingressrouteudps', 'middlewares', 'middlewaretcps', 'serverstransports', 'serverstransporttcps', 'tlsoptions', 'tlsstores', 'traefikservices'], k.read),
      ], labels),
      k.roleBinding('traefik', ns, 'traefik', ['traefik'], labels),
    ] + k.clusterAccess('traefik', ns, [
      // Cluster scope: GatewayClasses are cluster-scoped, and the gateway provider watches
      // Namespaces (names and labels, for routes' allowedRoutes) whatever `namespaces` says.
      // Nodes are not read (kubernetescrd.disableClusterScopeResources).
      k.rule([''], ['namespaces'], ['list', 'watch']),
      k.rule(['gateway.networking.k8s.io'], ['gatewayclasses'], k.read),
      k.rule(['gateway.networking.k8s.io'], ['gatewayclasses/status'], ['update']),
    ], labels, serviceAccount='traefik') + [
      // Cluster-scoped, so named after the namespace like the app's ClusterRoles.
      k.object('gateway.networking.k8s.io/v1', 'GatewayClass', k.clusterName(ns, 'traefik'), labels=labels) + {
        spec: { controllerName: 'traefik.io/gateway-controller' },
      },
      k.object('gateway.networking.k8s.io/v1', 'Gateway', gw.name, ns, labels) + {
        spec: {
          gatewayClassName: k.clusterName(ns, 'traefik'),
          // Every host name: users reach the gateway by addresses as well as by name (the
          // certificate covers them). Routes only from the app's namespace.
          listeners: [
            { name: gw.httpListener, port: ports.web, protocol: 'HTTP', allowedRoutes: { namespaces: { from: 'Same' } } },
            {
              name: gw.httpsListener,
              port: ports.websecure,
              protocol: 'HTTPS',
              tls: { mode: 'Terminate', certificateRefs: [{ group: '', kind: 'Secret', name: tlsSecret }] },
              allowedRoutes: { namespaces: { from: 'Same' } },
            },
          ],
        },
      },
      // Cleartext: every request is redirected to HTTPS; without a port, the redirect goes to 443.
      k.httpRoute('http-to-https', ns, [{
        filters: [{ type: 'RequestRedirect', requestRedirect: { scheme: 'https', statusCode: 301 } + (
          if p.redirectPort != null then { port: p.redirectPort } else {}
        ) }],
      }], labels, sectionName=gw.httpListener),
      // The sign-in flow itself (start, callback, sign-out): the one route without sign-in.
      k.httpRoute(proxyName, ns, [k.httpRule('/oauth2/', proxyName, proxyPort)], proxyLabels),
      signIn(gw.signIn['signed-in'], ''),
      signIn(gw.signIn.admins, '?allowed_groups=' + p.adminGroup),

      // The gateway. The annotations tell kfdeploy's URL list how users reach it; nodePort is
      // the HTTPS port's.
      k.service('gateway', ns, selector, [
        { name: 'https', port: 443, targetPort: 'websecure' } + (if p.nodePort != null then { nodePort: p.nodePort } else {}),
        { name: 'http', port: 80, targetPort: 'web' },
      ], p.serviceType, labels, annotations={
        'kfdeploy.dev/gateway-scheme': 'https',
        // Every route but the sign-in flow asks the gateway's sign-in first; the note tells users
        // who signs in how (kfdeploy prints it under the URLs).
        'kfdeploy.dev/gateway-sign-in': 'oauth2-proxy',
        'kfdeploy.dev/gateway-sign-in-note': std.join('; ', (
          if oidc then ['users sign in at %s' % p.oidcIssuerURL] else []
        ) + (
          if std.length(p.staticUsers) > 0 then [
            'static users %s sign in with the passwords in secrets.yaml (gateway/htpasswd.password.NAME)' % std.join(', ', p.staticUsers),
          ] else []
        )),
        [if p.hostname != '' then 'kfdeploy.dev/gateway-hostname']: p.hostname,
      }) + {
        spec+: { [if std.length(p.externalIPs) > 0 then 'externalIPs']: p.externalIPs },
      },
    ] + (
      if p.tlsSecretName == '' then
        [k.object('v1', 'Secret', 'gateway-tls', ns, labels, certAnnotations) + { type: 'kubernetes.io/tls' }]
      else []
    ) + [
      k.deployment('traefik', ns, selector, {
        serviceAccountName: 'traefik',
        securityContext: k.podSecurityContext(),
        affinity: {
          podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{
            weight: 100,
            podAffinityTerm: { labelSelector: { matchLabels: selector }, topologyKey: 'kubernetes.io/hostname' },
          }] },
        },
        containers: [{
          name: 'traefik',
          image: p.traefikImage,
          args: [
            '--global.checkNewVersion=false',
            '--global.sendAnonymousUsage=false',
            '--entryPoints.web.address=:%d' % ports.web,
            '--entryPoints.websecure.address=:%d' % ports.websecure,
            '--entryPoints.traefik.address=:%d' % ports.traefik,
          ] + [
            // A header whose name aliases another one (X_Auth_Request_User or
            // X.Auth.Request.User for X-Auth-Request-User) is forwarded as is by default, and
            // backends that derive variable names from header names (WSGI, CGI) read it as the
            // identity header: the sign-in's headers would be forgeable. Dropped before routing.
            '--entryPoints.%s.http.aliasHeadersStrategy=delete' % ep
            for ep in ['web', 'websecure', 'traefik']
          ] + [
            '--ping=true',
            '--providers.kubernetesgateway=true',
            '--providers.kubernetesgateway.namespaces=' + ns,
            '--providers.kubernetesgateway.nativeLBByDefault=true',
            // The Gateway's status names the gateway Service's address.
            '--providers.kubernetesgateway.statusAddress.service.name=gateway',
            '--providers.kubernetesgateway.statusAddress.service.namespace=' + ns,
            '--providers.kubernetescrd=true',
            '--providers.kubernetescrd.namespaces=' + ns,
            '--providers.kubernetescrd.nativeLBByDefault=true',
            '--providers.kubernetescrd.disableClusterScopeResources=true',
            // Collision-safe names of the Middlewares' routers and services; the Gateway
            // provider's ExtensionRef filters follow it (crd/kubernetes.go
            // FillExtensionBuilderRegistry). Unset, Traefik warns at start and uses the legacy
            // names, which may collide across namespaces.
            '--providers.kubernetescrd.safeNaming=true',
          ],
          ports: [
            { name: 'web', containerPort: ports.web },
            { name: 'websecure', containerPort: ports.websecure },
            { name: 'traefik', containerPort: ports.traefik },
          ],
          resources: k.resources(p.cpu, p.memory, memoryLimit=p.memoryLimit),
          readinessProbe: k.httpProbe('/ping', 'traefik', initialDelaySeconds=2, periodSeconds=10),
          livenessProbe: k.httpProbe('/ping', 'traefik', initialDelaySeconds=10, periodSeconds=10),
          // Upstream's chart runs it as 65532 with a read-only root; it writes nothing without
          // ACME or plugins.
          securityContext: k.securityContext(runAsUser=65532, runAsGroup=65532),
          volumeMounts: [k.tmpMount],
        }],
        volumes: [k.tmpVolume],
      }, replicas=p.replicas, labels=labels) + {
        // Traefik's informers wait forever for a kind the API server does not serve: preflight
        // checks these (gateway/client.go and crd/client.go@v3.7.13 watch them all).
        metadata+: { annotations+: {
          'kfdeploy.dev/watches': std.join(',', [
            'gateway.networking.k8s.io/v1/' + kind
            for kind in ['GatewayClass', 'Gateway', 'HTTPRoute', 'GRPCRoute', 'BackendTLSPolicy', 'TLSRoute']
          ] + ['gateway.networking.k8s.io/v1beta1/ReferenceGrant'] + [
            'traefik.io/v1alpha1/' + kind
            for kind in ['IngressRoute', 'IngressRouteTCP', 'IngressRouteUDP', 'Middleware', 'MiddlewareTCP', 'ServersTransport', 'ServersTransportTCP', 'TLSOption', 'TLSStore', 'TraefikService']
          ]),
          'kfdeploy.dev/watches-install': 'install the Gateway API v1.6.1 standard channel (kubectl apply --server-side -f https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.6.1/standard-install.yaml) and the CRDs of Traefik v3.7 (kubectl apply --server-side -f https://raw.githubusercontent.com/traefik/traefik/v3.7.13/docs/content/reference/dynamic-configuration/kubernetes-crd-definition-v1.yml)',
        } },
      },

      // The sign-in. Its secrets reach it as files, never as arguments (visible in the process
      // list) or values in the manifests.
      k.passwordSecret(proxyName, ns, {
        'cookie-secret': env.secrets.cookieSecret,
        'client-secret': env.secrets.oidcClientSecret,
      }, proxyLabels),
    ] + (
      // Static users: generate fills in the htpasswd file (bcrypt) from the passwords it keeps in
      // secrets.yaml, one per name (pkg/app/htpasswd.go).
      if std.length(p.staticUsers) > 0 then [
        k.object('v1', 'Secret', proxyName + '-htpasswd', ns, proxyLabels, k.keepOnDelete + {
          'kfdeploy.dev/htpasswd': 'gateway/htpasswd',
          'kfdeploy.dev/htpasswd-users': std.join(',', p.staticUsers),
        }) + { type: 'Opaque' },
      ] else []
    ) + [
      k.service(proxyName, ns, proxySelector, [{ name: 'http', port: proxyPort, targetPort: 'http' }], labels=proxyLabels),
    ] + (
      if ownSignInPage then [k.configMap(proxyName + '-templates', ns, { 'sign_in.html': importstr 'sign_in.html' }, proxyLabels)] else []
    ) + [
      k.deployment(proxyName, ns, proxySelector, {
        automountServiceAccountToken: false,
        securityContext: k.podSecurityContext(),
        containers: [{
          name: proxyName,
          image: p.oauth2ProxyImage,
          args: [
            '--http-address=0.0.0.0:%d' % proxyPort,
            // ForwardAuth mode: every authorised request is answered 202 by the static upstream,
            // with the identity in X-Auth-Request-* response headers; the return address after
            // sign-in comes from Traefik's X-Forwarded-{Proto,Host,Uri}.
            '--upstream=static://202',
            '--reverse-proxy=true',
            '--set-xauthrequest=true',
            '--cookie-secret-file=%s/cookie-secret' % secretDir,
            '--cookie-secure=true',
            '--client-secret-file=%s/client-secret' % secretDir,
            '--client-id=' + p.oidcClientID,
          ] + (
            if oidc then [
              '--provider=oidc',
              '--oidc-issuer-url=' + p.oidcIssuerURL,
              '--scope=' + p.oidcScope,
              '--oidc-groups-claim=' + p.oidcGroupsClaim,
              // Programs send the provider's ID token as a bearer token instead of a cookie.
              '--skip-jwt-bearer-tokens=true',
            ] + (
              // PKCE, which oauth2-proxy leaves off unless asked (it warns at start when the
              // provider's discovery offers it).
              if p.oidcCodeChallengeMethod != '' then ['--code-challenge-method=' + p.oidcCodeChallengeMethod] else []
            ) + ['--email-domain=' + d for d in p.emailDomains]
            + ['--allowed-group=' + g for g in p.allowedGroups]
            // Static users only: no provider flags (see ownSignInPage); the page's form signs in.
            else []
          ) + (
            // Straight to the provider, unless the page must offer the static users' form.
            if oidc && std.length(p.staticUsers) == 0 then ['--skip-provider-button=true'] else []
          ) + (
            if std.length(p.staticUsers) > 0 then
              ['--htpasswd-file=%s/htpasswd' % secretDir] + ['--htpasswd-user-group=' + g for g in staticGroups]
            else []
          ) + (
            if ownSignInPage then ['--custom-templates-dir=' + templatesDir] else []
          ) + (
            if p.hostname != '' then [
              '--redirect-url=https://%s%s/oauth2/callback' % [p.hostname, if p.redirectPort != null then ':' + p.redirectPort else ''],
              '--whitelist-domain=' + p.hostname,
            ] else []
          ),
          ports: [{ name: 'http', containerPort: proxyPort }],
          resources: k.resources('50m', '64Mi', memoryLimit='128Mi'),
          readinessProbe: k.httpProbe('/ready', 'http', initialDelaySeconds=2, periodSeconds=10),
          livenessProbe: k.httpProbe('/ping', 'http', initialDelaySeconds=10, periodSeconds=10),
          // The distroless image's nonroot user.
          securityContext: k.securityContext(runAsUser=65532, runAsGroup=65532),
          volumeMounts: [{ name: 'secrets', mountPath: secretDir, readOnly: true }] + (
            if ownSignInPage then [{ name: 'templates', mountPath: templatesDir, readOnly: true }] else []
          ),
        }],
        volumes: (if ownSignInPage then [{ name: 'templates', configMap: { name: proxyName + '-templates' } }] else []) + [{
          name: 'secrets',
          projected: { sources: [{ secret: { name: proxyName } }] + (
            if std.length(p.staticUsers) > 0 then [{ secret: { name: proxyName + '-htpasswd' } }] else []
          ) },
        }],
      },
                   replicas=p.signInReplicas,
                   labels=proxyLabels,
                   // oauth2-proxy reads its templates at start.
                   podAnnotations=if ownSignInPage then { 'kfdeploy.dev/config-hash': std.md5(importstr 'sign_in.html') } else {}),
    ],
}
