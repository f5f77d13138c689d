// Helpers shared by every component: object constructors, labels, resources, probes, security
// contexts, RBAC, Ambassador and Gateway API routes and CustomResourceDefinition schemas.
// Components built from these stay short and alike; every helper that takes a namespace sets
// metadata.namespace.
{
  // ---------------------------------------------------------------------------------------------
  // Labels

  // Standard labels for every object of a component.
  labels(component, name=component):: {
    'app.kubernetes.io/name': name,
    'app.kubernetes.io/component': component,
    'app.kubernetes.io/part-of': 'kubeflow',
    'app.kubernetes.io/managed-by': 'kfdeploy',
  },

  // Pod selector labels: a stable subset of labels() that never changes after the first deploy.
  selector(component, name=component):: {
    'app.kubernetes.io/name': name,
    'app.kubernetes.io/component': component,
  },

  // Name of a cluster-scoped object (ClusterRole, ClusterRoleBinding, StorageClass...) owned by
  // the app in `namespace`: prefixed so that apps in different namespaces don't collide.
  clusterName(namespace, name):: namespace + '-' + name,

  // ---------------------------------------------------------------------------------------------
  // Objects

  object(apiVersion, kind, name, namespace=null, labels={}, annotations={}):: {
    apiVersion: apiVersion,
    kind: kind,
    metadata: {
      name: name,
      [if namespace != null then 'namespace']: namespace,
      [if std.length(labels) > 0 then 'labels']: labels,
      [if std.length(annotations) > 0 then 'annotations']: annotations,
    },
  },

  namespace(name, labels={}):: $.object('v1', 'Namespace', name, labels=labels),

  // automount=false for pods that never talk to the Kubernetes API.
  serviceAccount(name, namespace, labels={}, automount=null):: $.object('v1', 'ServiceAccount', name, namespace, labels) + {
    [if automount != null then 'automountServiceAccountToken']: automount,
  },

  // The pull secrets of the app (env.imagePullSecrets, from spec.images.pullSecrets) as pod-spec
  // fields: {} without any. Render adds them to the pod specs and ServiceAccounts a component
  // renders; components use this for the pod specs inside their configuration (templates in
  // ConfigMaps, controllers' defaults), which render cannot see.
  pullSecrets(env):: (
    local names = std.get(env, 'imagePullSecrets', []);
    if std.length(names) > 0 then { imagePullSecrets: [{ name: n } for n in names] } else {}
  ),

  configMap(name, namespace, data, labels={}):: $.object('v1', 'ConfigMap', name, namespace, labels) + {
    data: data,
  },

  // Annotation that makes teardown keep an object unless --purge (generated passwords, data).
  keepOnDelete:: { 'kfdeploy.dev/keep-on-delete': 'true' },

  // A Secret holding generated passwords: stringData values are env.secrets placeholders that
  // apply replaces with the stored values; kept on teardown so that data volumes stay readable.
  passwordSecret(name, namespace, stringData, labels={}):: $.object('v1', 'Secret', name, namespace, labels, $.keepOnDelete) + {
    type: 'Opaque',
    stringData: stringData,
  },

  // A Secret that a controller fills in at run time (certificates, CSRF keys): kfdeploy creates
  // it empty and never owns its data, so re-applying doesn't wipe what the controller wrote.
  emptySecret(name, namespace, labels={}, type='Opaque'):: $.object('v1', 'Secret', name, namespace, labels) + {
    type: type,
  },

  // ---------------------------------------------------------------------------------------------
  // Resources, probes, security

  // Resource requirements; gpus > 0 adds the GPU resource to limits (and requests).
  resources(cpu, memory, gpus=0, gpuResource='nvidia.com/gpu', cpuLimit=null, memoryLimit=null):: {
    requests: { cpu: cpu, memory: memory } + (if gpus > 0 then { [gpuResource]: gpus } else {}),
    limits: { memory: if memoryLimit != null then memoryLimit else memory }
            + (if cpuLimit != null then { cpu: cpuLimit } else {})
            + (if gpus > 0 then { [gpuResource]: gpus } else {}),
  },

  httpProbe(path, port, initialDelaySeconds=5, periodSeconds=10, scheme=null, timeoutSeconds=null, failureThreshold=null):: {
    httpGet: { path: path, port: port } + (if scheme != null then { scheme: scheme } else {}),
    initialDelaySeconds: initialDelaySeconds,
    periodSeconds: periodSeconds,
    [if timeoutSeconds != null then 'timeoutSeconds']: timeoutSeconds,
    [if failureThreshold != null then 'failureThreshold']: failureThreshold,
  },

  tcpProbe(port, initialDelaySeconds=5, periodSeconds=10):: {
    tcpSocket: { port: port },
    initialDelaySeconds: initialDelaySeconds,
    periodSeconds: periodSeconds,
  },

  grpcProbe(port, initialDelaySeconds=5, periodSeconds=10):: {
    grpc: { port: port },
    initialDelaySeconds: initialDelaySeconds,
    periodSeconds: periodSeconds,
  },

  execProbe(command, initialDelaySeconds=5, periodSeconds=10, timeoutSeconds=5, failureThreshold=3):: {
    exec: { command: command },
    initialDelaySeconds: initialDelaySeconds,
    periodSeconds: periodSeconds,
    timeoutSeconds: timeoutSeconds,
    failureThreshold: failureThreshold,
  },

  // A restrictive container security context; readOnlyRoot=false where the image writes to /.
  // runAsUser=null keeps the image's (non-root) user; runAsNonRoot=false only for the few
  // containers that must run as root (each says why).
  securityContext(runAsUser=1000, readOnlyRoot=true, runAsNonRoot=true, runAsGroup=null):: {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: readOnlyRoot,
    runAsNonRoot: runAsNonRoot,
    [if runAsUser != null then 'runAsUser']: runAsUser,
    [if runAsGroup != null then 'runAsGroup']: runAsGroup,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  },

  // Pod-level security context: non-root by default, RuntimeDefault seccomp, optional fsGroup so
  // that volumes are writable by the (non-root) user.
  podSecurityContext(fsGroup=null, runAsNonRoot=true):: {
    runAsNonRoot: runAsNonRoot,
    seccompProfile: { type: 'RuntimeDefault' },
    [if fsGroup != null then 'fsGroup']: fsGroup,
    [if fsGroup != null then 'fsGroupChangePolicy']: 'OnRootMismatch',
  },

  // Writable scratch space for containers with a read-only root filesystem.
  emptyDir(name, sizeLimit='256Mi'):: { name: name, emptyDir: { sizeLimit: sizeLimit } },
  tmpVolume:: $.emptyDir('tmp'),
  tmpMount:: { name: 'tmp', mountPath: '/tmp' },

  // Environment variables.
  env(name, value):: { name: name, value: value },
  fieldEnv(name, fieldPath):: { name: name, valueFrom: { fieldRef: { fieldPath: fieldPath } } },
  secretEnv(name, secret, key):: { name: name, valueFrom: { secretKeyRef: { name: secret, key: key } } },

  // ---------------------------------------------------------------------------------------------
  // Storage, services, workloads

  pvc(name, namespace, size, storageClass=null, accessModes=['ReadWriteOnce'], labels={}):: $.object('v1', 'PersistentVolumeClaim', name, namespace, labels) + {
    spec: {
      accessModes: accessModes,
      resources: { requests: { storage: size } },
      // null: the cluster's default StorageClass; '' binds to PVs without a class.
      [if storageClass != null then 'storageClassName']: storageClass,
    },
  },

  service(name, namespace, selector, ports, type='ClusterIP', labels={}, annotations={}):: $.object('v1', 'Service', name, namespace, labels, annotations) + {
    spec: { type: type, selector: selector, ports: ports },
  },

  // A pod template's metadata: selector labels (stable) plus the component's labels.
  local template(selector, labels, podSpec, annotations={}) = {
    metadata: {
      labels: labels + selector,
      [if std.length(annotations) > 0 then 'annotations']: annotations,
    },
    spec: podSpec,
  },

  // strategy: null (RollingUpdate) or 'Recreate' for pods holding a ReadWriteOnce volume.
  deployment(name, namespace, selector, podSpec, replicas=1, labels={}, strategy=null, podAnnotations={}):: $.object('apps/v1', 'Deployment', name, namespace, labels) + {
    spec: {
      replicas: replicas,
      selector: { matchLabels: selector },
      [if strategy != null then 'strategy']: { type: strategy },
      template: template(selector, labels, podSpec, podAnnotations),
    },
  },

  statefulSet(name, namespace, selector, podSpec, serviceName, replicas=1, labels={}, podAnnotations={}):: $.object('apps/v1', 'StatefulSet', name, namespace, labels) + {
    spec: {
      replicas: replicas,
      serviceName: serviceName,
      selector: { matchLabels: selector },
      template: template(selector, labels, podSpec, podAnnotations),
    },
  },

  daemonSet(name, namespace, selector, podSpec, labels={}, podAnnotations={}):: $.object('apps/v1', 'DaemonSet', name, namespace, labels) + {
    spec: {
      selector: { matchLabels: selector },
      updateStrategy: { type: 'RollingUpdate' },
      template: template(selector, labels, podSpec, podAnnotations),
    },
  },

  // ---------------------------------------------------------------------------------------------
  // RBAC

  rule(apiGroups, resources, verbs, resourceNames=null):: {
    apiGroups: apiGroups,
    resources: resources,
    verbs: verbs,
    [if resourceNames != null then 'resourceNames']: resourceNames,
  },
  read:: ['get', 'list', 'watch'],
  write:: ['create', 'update', 'patch', 'delete'],

  role(name, namespace, rules, labels={}):: $.object('rbac.authorization.k8s.io/v1', 'Role', name, namespace, labels) + {
    rules: rules,
  },

  clusterRole(name, rules, labels={}):: $.object('rbac.authorization.k8s.io/v1', 'ClusterRole', name, labels=labels) + {
    rules: rules,
  },

  // Binds a Role (or, with roleKind='ClusterRole', a ClusterRole's rules inside this namespace
  // only) to service accounts of the namespace.
  roleBinding(name, namespace, roleName, serviceAccounts, labels={}, roleKind='Role'):: $.object('rbac.authorization.k8s.io/v1', 'RoleBinding', name, namespace, labels) + {
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: roleKind, name: roleName },
    subjects: [{ kind: 'ServiceAccount', name: sa, namespace: namespace } for sa in serviceAccounts],
  },

  clusterRoleBinding(name, clusterRoleName, serviceAccount, namespace, labels={}):: $.object('rbac.authorization.k8s.io/v1', 'ClusterRoleBinding', name, labels=labels) + {
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: clusterRoleName },
    subjects: [{ kind: 'ServiceAccount', name: serviceAccount, namespace: namespace }],
  },

  // A service account with namespace-scoped permissions: ServiceAccount, Role and RoleBinding of
  // the same name.
  namespacedAccess(name, namespace, rules, labels={}, automount=null):: [
    $.serviceAccount(name, namespace, labels, automount),
    $.role(name, namespace, rules, labels),
    $.roleBinding(name, namespace, name, [name], labels),
  ],

  // Cluster-scoped permissions for a service account of the namespace; the ClusterRole and its
  // binding are named <namespace>-<name>. Components say in a comment why they need it.
  clusterAccess(name, namespace, rules, labels={}, serviceAccount=name):: [
    $.clusterRole($.clusterName(namespace, name), rules, labels),
    $.clusterRoleBinding($.clusterName(namespace, name), $.clusterName(namespace, name), serviceAccount, namespace, labels),
  ],

  // ---------------------------------------------------------------------------------------------
  // Ambassador (Emissary-ingress) routes
  //
  // Routes are getambassador.io/v3alpha1 resources carried in the getambassador.io/config
  // annotation of a Service (flat form: name and spec fields side by side). Emissary reads them
  // from Services of its namespace without any CRD, so a component's routes exist exactly when
  // the component does and no component depends on Emissary's CRDs.

  // A Mapping from a URL prefix to a Service of the namespace. rewrite: null keeps Emissary's
  // default (the prefix becomes '/'); '' forwards the path unchanged. scheme 'https' makes
  // Emissary originate TLS to backends that only speak HTTPS.
  //
  // Timeouts: a Mapping without timeout_ms gets Emissary's 3 s for the whole response, which cuts
  // streams and slow requests, so every route says its own. Ordinary routes: 60 s per response.
  // Routes that carry long-lived connections (websocket, or stream: server-sent events, log and
  // watch streams) get no response timeout (0 turns Envoy's off) and are bounded by an idle timeout
  // of one hour instead (Envoy's own stream idle default is 5 minutes). timeoutMs and
  // idleTimeoutMs override these.
  //
  // Who may use a route, recorded for kfdeploy (hidden fields, so Emissary never sees them):
  // signIn is what stands before it ('password', 'kubernetes-token', 'notebook-token', 'gateway'
  // for a UI that takes the gateway's sign-in as its own, or 'none'), access what a user who got through may do ('read-only' or 'read-write'), and ui,
  // when set, the title of the UI whose entry point this is (kfdeploy lists its URL).
  //
  // allowed is who passes the sign-in of the `gateway` component (Gateway API, see httpRoutes):
  // 'admins' (the admin group; the default, so that a route nobody thought about stays closed)
  // or 'signed-in' (any signed-in user), for UIs that act as the user or show only what is theirs.
  mapping(name, prefix, service, namespace, port, rewrite=null, websocket=false, timeoutMs=null, scheme='http', stream=false, idleTimeoutMs=null, signIn=null, access='read-write', ui=null, allowed='admins')::
    local longLived = websocket || stream;
    local idle = if idleTimeoutMs != null then idleTimeoutMs else if longLived then 3600000 else null;
    assert signIn == null || std.member(['password', 'kubernetes-token', 'notebook-token', 'gateway', 'none'], signIn) : 'mapping %s: unknown signIn %s' % [name, signIn];
    assert std.member(['read-only', 'read-write'], access) : 'mapping %s: access must be read-only or read-write' % name;
    assert std.member(['admins', 'signed-in'], allowed) : 'mapping %s: allowed must be admins or signed-in' % name;
    {
      signIn:: signIn,
      access:: access,
      ui:: ui,
      // What httpRoutes needs, hidden from Emissary.
      allowed:: allowed,
      backend:: { service: service, namespace: namespace, port: port, scheme: scheme },
      rewritePath:: rewrite,
      apiVersion: 'getambassador.io/v3alpha1',
      kind: 'Mapping',
      name: name,
      hostname: '*',
      prefix: prefix,
      service: (if scheme == 'https' then 'https://' else '') + service + '.' + namespace + ':' + port,
      [if rewrite != null then 'rewrite']: rewrite,
      [if websocket then 'allow_upgrade']: ['websocket'],
      timeout_ms: if timeoutMs != null then timeoutMs else if longLived then 0 else 60000,
      [if idle != null then 'idle_timeout_ms']: idle,
    },

  // The annotation carrying Emissary resources (Mappings, Listeners, Hosts, Modules), and
  // kfdeploy.dev/routes: for each Mapping its signIn, access and ui (see mapping), as JSON, which
  // kfdeploy reads for the URLs it prints and the checks of who may reach what.
  ambassadorConfig(resources)::
    local mappings = [r for r in resources if r.kind == 'Mapping'];
    {
      'getambassador.io/config': std.join('', ['---\n' + std.manifestYamlDoc(r, quote_keys=false) + '\n' for r in resources]),
      [if std.length(mappings) > 0 then 'kfdeploy.dev/routes']: std.manifestJsonMinified({
        [m.name]: { prefix: m.prefix, access: m.access, allowed: m.allowed }
                  + (if m.signIn != null then { signIn: m.signIn } else {})
                  + (if m.ui != null then { ui: m.ui } else {})
        for m in mappings
      }),
    },

  // ---------------------------------------------------------------------------------------------
  // Gateway API routes (the `gateway` component)
  //
  // The same route definitions (k.mapping) rendered for the `gateway` component: with it in the
  // app (env.gateway == 'gateway-api'), each Mapping is also a gateway.networking.k8s.io/v1
  // HTTPRoute on the Gateway's HTTPS listener, behind the sign-in of the gateway (a Traefik
  // ForwardAuth Middleware, referenced as an ExtensionRef filter, which must be in the route's
  // namespace). Without it the list is empty, so the routes of the two gateways never drift.

  // Names the `gateway` component gives the objects routes refer to.
  gateway:: {
    name: 'gateway',
    httpsListener: 'https',
    httpListener: 'http',
    // Middlewares: any signed-in user, or only the admin group.
    signIn: { 'signed-in': 'signin', admins: 'signin-admins' },
    // The sign-in proxy (oauth2-proxy), which UIs may ask about a request's session.
    signInProxy: { service: 'oauth2-proxy', port: 4180 },
  },

  // An HTTPRoute of the Gateway's HTTPS listener; rules as httpRule.
  httpRoute(name, namespace, rules, labels={}, sectionName=$.gateway.httpsListener):: $.object('gateway.networking.k8s.io/v1', 'HTTPRoute', name, namespace, labels) + {
    spec: {
      parentRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: $.gateway.name, sectionName: sectionName }],
      rules: rules,
    },
  },

  // A rule sending a path prefix to a Service port, through filters (applied in order).
  httpRule(prefix, service, port, filters=[]):: {
    matches: [{ path: { type: 'PathPrefix', value: prefix } }],
    [if std.length(filters) > 0 then 'filters']: filters,
    backendRefs: [{ name: service, port: port }],
  },

  // The filter that puts a Traefik Middleware of the route's namespace in front of a rule.
  middlewareFilter(name):: {
    type: 'ExtensionRef',
    extensionRef: { group: 'traefik.io', kind: 'Middleware', name: name },
  },

  // The HTTPRoutes of Mappings when the app's gateway is `gateway`, else none. The sign-in
  // comes first, so that it sees the path the user asked for (its return address after sign-in);
  // then Emissary's rewrite: null (Emissary's default) replaces the prefix by '/', '' keeps the
  // path, anything else replaces the prefix. Websockets need nothing (Gateway API proxies the
  // upgrade); timeouts are not rendered, since Traefik reads none from a rule
  // (pkg/provider/kubernetes/gateway@v3.7.13) and by default waits for a backend's response
  // without limit. A backend must speak plain HTTP: Traefik dials TLS only with a
  // BackendTLSPolicy naming the CA of the backend's certificate.
  httpRoutes(env, mappings, labels={})::
    if std.get(env, 'gateway', '') != 'gateway-api' then [] else [
      local b = m.backend;
      assert b.namespace == env.namespace : 'route %s: the backend must be in the app namespace' % m.name;
      assert b.scheme == 'http' : 'route %s: the gateway component dials backends in plain HTTP, not %s' % [m.name, b.scheme];
      local rewrite = if m.rewritePath == null then '/' else m.rewritePath;
      $.httpRoute(m.name, env.namespace, [
        $.httpRule(m.prefix, b.service, b.port, [$.middlewareFilter($.gateway.signIn[m.allowed])] + (
          if rewrite == '' then [] else [{
            type: 'URLRewrite',
            urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: rewrite } },
          }]
        )),
      ], labels)
      for m in mappings
      if m.kind == 'Mapping'
    ],

  // ---------------------------------------------------------------------------------------------
  // CustomResourceDefinitions (apiextensions.k8s.io/v1, structural schemas)

  // versions: crdVersion(...) entries; exactly one has storage=true.
  crd(group, kind, plural, versions, scope='Namespaced', shortNames=[], categories=['kubeflow'], labels={}):: $.object('apiextensions.k8s.io/v1', 'CustomResourceDefinition', plural + '.' + group, labels=labels) + {
    spec: {
      group: group,
      scope: scope,
      names: {
        kind: kind,
        listKind: kind + 'List',
        plural: plural,
        singular: std.asciiLower(kind),
        [if std.length(shortNames) > 0 then 'shortNames']: shortNames,
        [if std.length(categories) > 0 then 'categories']: categories,
      },
      versions: versions,
    },
  },

  // status=true adds the status subresource (controllers then write status through it only).
  crdVersion(name, schema, columns=[], status=true, served=true, storage=true):: {
    name: name,
    served: served,
    storage: storage,
    schema: { openAPIV3Schema: schema },
    [if status then 'subresources']: { status: {} },
    [if std.length(columns) > 0 then 'additionalPrinterColumns']: columns,
  },

  column(name, jsonPath, type='string', description=null, priority=null):: {
    name: name,
    type: type,
    jsonPath: jsonPath,
    [if description != null then 'description']: description,
    [if priority != null then 'priority']: priority,
  },
  ageColumn:: $.column('Age', '.metadata.creationTimestamp', 'date'),
  // The type of the latest condition, as the Kubeflow operators print it.
  stateColumn:: $.column('State', '.status.conditions[-1:].type'),

  // OpenAPI v3 schema builders. Every node has a type (structural schema); unknown fields are
  // kept only where a builder says so (preserve, embedded, podTemplate), never at the top level.
  schema:: {
    local d(description) = if description != null then { description: description } else {},

    // An object with known fields; unknown fields are pruned by the API server (or rejected with
    // field validation Strict). preserve=true keeps unknown fields next to the validated ones.
    object(properties={}, required=[], description=null, preserve=false, minProperties=null):: {
      type: 'object',
      [if std.length(properties) > 0 then 'properties']: properties,
      [if std.length(required) > 0 then 'required']: required,
      [if preserve then 'x-kubernetes-preserve-unknown-fields']: true,
      [if minProperties != null then 'minProperties']: minProperties,
    } + d(description),

    // A map from arbitrary keys to values of one schema.
    map(values, description=null, minProperties=null, maxProperties=null):: {
      type: 'object',
      additionalProperties: values,
      [if minProperties != null then 'minProperties']: minProperties,
      [if maxProperties != null then 'maxProperties']: maxProperties,
    } + d(description),

    string(description=null, enum=null, pattern=null, minLength=null, maxLength=null, format=null):: {
      type: 'string',
      [if enum != null then 'enum']: enum,
      [if pattern != null then 'pattern']: pattern,
      [if minLength != null then 'minLength']: minLength,
      [if maxLength != null then 'maxLength']: maxLength,
      [if format != null then 'format']: format,
    } + d(description),

    integer(description=null, minimum=null, maximum=null, format='int32'):: {
      type: 'integer',
      [if format != null then 'format']: format,
      [if minimum != null then 'minimum']: minimum,
      [if maximum != null then 'maximum']: maximum,
    } + d(description),

    number(description=null, minimum=null):: {
      type: 'number',
      [if minimum != null then 'minimum']: minimum,
    } + d(description),

    boolean(description=null):: { type: 'boolean' } + d(description),

    array(items, description=null, minItems=null, maxItems=null):: {
      type: 'array',
      items: items,
      [if minItems != null then 'minItems']: minItems,
      [if maxItems != null then 'maxItems']: maxItems,
    } + d(description),

    // An integer or a string such as "10%" or "5m".
    intOrString(description=null):: { 'x-kubernetes-int-or-string': true } + d(description),

    // An object whose content is not validated here (e.g. Kubernetes types the API server
    // validates when the controller creates them).
    preserve(description=null):: {
      type: 'object',
      'x-kubernetes-preserve-unknown-fields': true,
    } + d(description),

    // A complete Kubernetes object (apiVersion, kind, metadata) embedded in a field.
    embedded(description=null):: {
      type: 'object',
      'x-kubernetes-embedded-resource': true,
      'x-kubernetes-preserve-unknown-fields': true,
    } + d(description),

    // A pod template: at least one container, each with a name and an image; everything else is
    // the pod spec the API server validates when the controller creates the pod.
    podTemplate(description=null, required=true):: $.schema.object({
      metadata: $.schema.preserve(),
      spec: $.schema.object({
        containers: $.schema.array($.schema.object({
          name: $.schema.string(minLength=1),
          image: $.schema.string(minLength=1),
        }, required=['name'] + (if required then ['image'] else []), preserve=true), minItems=1),
      }, required=['containers'], preserve=true),
    }, required=['spec'], description=description),

    // The top level of a custom resource.
    root(spec, status=$.schema.preserve('Written by the controller.'), required=['spec'], description=null):: $.schema.object({
      apiVersion: $.schema.string(),
      kind: $.schema.string(),
      metadata: { type: 'object' },
      spec: spec,
      [if status != null then 'status']: status,
    }, required=required, description=description),
  },
}
