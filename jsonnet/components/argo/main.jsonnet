// argo: Argo Workflows, namespace-scoped: the workflow controller and the Argo server (API + UI,
// routed at /argo/), with the Workflow, WorkflowTemplate, CronWorkflow... CRDs.
local crds = import 'crds.libsonnet';
local images = import 'kfdeploy/images.libsonnet';
local k = import 'kfdeploy/k.libsonnet';

// 'sso' is not offered: argo-server exits at start without an SSO issuer, client ID and secret
// in its config map (server/auth/sso/sso.go@v3.7.18, newSso), which this component does not set.
local authModes = ['client', 'server'];

{
  description: 'Argo Workflows controller and server/UI (at /argo/), watching this namespace only, with the Workflow, WorkflowTemplate, ClusterWorkflowTemplate and CronWorkflow CRDs',
  params: {
    controllerImage: { default: images.argoController, description: 'Workflow controller image' },
    serverImage: { default: images.argoServer, description: 'Argo server (API and UI) image' },
    executorImage: { default: images.argoExecutor, description: 'Executor image that the controller injects into workflow pods' },
    authMode: { default: 'client', description: "Argo server authentication: 'client' (users present a Kubernetes bearer token; bind them to the Role argo-workflows-user) or 'server' (anyone reaching the UI acts as the server's account: don't expose it)" },
    workflowServiceAccount: { default: 'argo-workflow', description: 'Service account of workflow pods unless a workflow names another one' },
    route: { default: null, description: "Route /argo/ through the gateway (null: only with authMode client, where users sign in with a token; true routes authMode server too, open to anyone who reaches the gateway)" },
  },
  // Images the controller puts into every workflow pod (kfdeploy images lists them).
  runtimeImages(p, env):: [
    { image: p.executorImage, use: 'init and wait containers of workflow pods (workflow-controller --executor-image)' },
  ],
  render(p, env)::
    assert std.member(authModes, p.authMode) : 'argo: authMode must be one of %s, got %s' % [std.join(', ', authModes), p.authMode];
    assert p.route == null || std.isBoolean(p.route) : 'argo: route must be null, true or false, got %s' % [p.route];
    // authMode server acts for anyone as the server's account, which can run workflows: not
    // routed unless asked for.
    local routed = if p.route != null then p.route else p.authMode == 'client';
    local labels = k.labels('argo');
    local ns = env.namespace;
    local controllerLabels = k.labels('argo', 'workflow-controller');
    local controllerSelector = k.selector('argo', 'workflow-controller');
    local serverLabels = k.labels('argo', 'argo-server');
    local serverSelector = k.selector('argo', 'argo-server');
    // The server serves HTTPS (self-signed), and Emissary originates TLS to it. Traefik would
    // need a BackendTLSPolicy that names the certificate's CA, which a self-signed one has none
    // of: behind the gateway component the server speaks plain HTTP, like the other UIs' backends.
    // It acts with the user's Kubernetes token (authMode client) or as itself, never as the
    // gateway's user: admins only.
    local secure = std.get(env, 'gateway', '') != 'gateway-api';
    local routes = if routed then [k.mapping('argo', '/argo/', 'argo-server', ns, 2746, scheme=if secure then 'https' else 'http', websocket=true,
                                             signIn=if p.authMode == 'client' then 'kubernetes-token' else 'none',
                                             ui='Argo Workflows', allowed='admins')] else [];
    local yaml(v) = std.manifestYamlDoc(v, quote_keys=false);
    [
      crds(labels),

      // The controller works in this namespace only (--namespaced, --managed-namespace); its
      // Role follows manifests/namespace-install/workflow-controller-rbac/workflow-controller-role.yaml@v3.7.18.
      k.namespacedAccess('argo', ns, [
        k.rule(['coordination.k8s.io'], ['leases'], ['create', 'get', 'update']),
        k.rule([''], ['pods', 'pods/exec'], k.read + k.write),
        k.rule([''], ['configmaps'], k.read),
        k.rule([''], ['persistentvolumeclaims', 'persistentvolumeclaims/finalizers'], ['create', 'update', 'delete', 'get']),
        k.rule(['argoproj.io'], ['workflows', 'workflows/finalizers', 'workflowtasksets', 'workflowtasksets/finalizers', 'workflowartifactgctasks'], k.read + k.write),
        k.rule(['argoproj.io'], ['workflowtemplates', 'workflowtemplates/finalizers'], k.read),
        k.rule(['argoproj.io'], ['workflowtaskresults'], ['list', 'watch', 'deletecollection']),
        k.rule(['argoproj.io'], ['cronworkflows', 'cronworkflows/finalizers'], k.read + ['update', 'patch', 'delete']),
        k.rule([''], ['serviceaccounts'], ['get', 'list']),
        k.rule([''], ['secrets'], ['get']),
        k.rule([''], ['events'], ['create', 'patch']),
        k.rule(['policy'], ['poddisruptionbudgets'], ['create', 'get', 'delete']),
      ], controllerLabels),
      // The server acts with the user's own token (authMode client); its account only reads
      // its configuration and manages workflows for authMode server.
      k.namespacedAccess('argo-server', ns, [
        k.rule([''], ['configmaps'], k.read),
        k.rule([''], ['serviceaccounts'], ['get', 'list']),
        k.rule([''], ['secrets'], ['get']),
        k.rule([''], ['events'], ['watch', 'create', 'patch']),
        k.rule([''], ['pods', 'pods/log'], ['get', 'list', 'watch', 'delete']),
        k.rule(['argoproj.io'], ['workflows', 'workflowtemplates', 'cronworkflows', 'workfloweventbindings'], k.read + k.write),
      ], serverLabels),
      // ClusterWorkflowTemplates are cluster-scoped, so only a ClusterRole can let the controller
      // and the server read them. Both check get, list and watch at start and, without all three,
      // never resolve a workflow's templateRef with clusterScope: true
      // (util/rbac/rbac.go@v3.7.18, HasAccessToClusterWorkflowTemplates). Read-only, as upstream's
      // argo-clusterworkflowtemplate-role (manifests/quick-start/base/cluster-workflow-template-rbac.yaml@v3.7.18).
      k.clusterRole(k.clusterName(ns, 'argo-clusterworkflowtemplates'), [
        k.rule(['argoproj.io'], ['clusterworkflowtemplates'], k.read),
      ], labels),
      k.clusterRoleBinding(k.clusterName(ns, 'argo-clusterworkflowtemplates'), k.clusterName(ns, 'argo-clusterworkflowtemplates'), 'argo', ns, controllerLabels),
      k.clusterRoleBinding(k.clusterName(ns, 'argo-server-clusterworkflowtemplates'), k.clusterName(ns, 'argo-clusterworkflowtemplates'), 'argo-server', ns, serverLabels),
      // In authMode client argo-server acts with each user's own token, so users need these
      // rights themselves: operators bind this Role to their users or groups (docs/components.md).
      // The verbs follow upstream's argo-aggregate-to-edit
      // (manifests/cluster-install-no-crds/workflow-controller-rbac/workflow-aggregate-roles.yaml@v3.7.18);
      // pods, pod logs and events are what the UI shows of a running workflow.
      k.role('argo-workflows-user', ns, [
        k.rule(['argoproj.io'], ['workflows', 'workflowtemplates', 'cronworkflows', 'workfloweventbindings'], k.read + k.write + ['deletecollection']),
        k.rule(['argoproj.io'], ['workflowtaskresults'], k.read),
        k.rule([''], ['pods', 'pods/log', 'events'], k.read),
      ], serverLabels),
      // Workflow pods only report their results (the emissary executor needs nothing else).
      k.namespacedAccess(p.workflowServiceAccount, ns, [
        k.rule(['argoproj.io'], ['workflowtaskresults'], ['create', 'patch']),
      ], labels),

      k.configMap('workflow-controller-configmap', ns, {
        // Every workflow pod, the executor's init and wait containers included, pulls with the
        // app's pull secrets (spec.imagePullSecrets of a Workflow, config/config.go@v3.7.18).
        workflowDefaults: yaml({ spec: { serviceAccountName: p.workflowServiceAccount } + k.pullSecrets(env) }),
        // The wait/init containers Argo adds to every workflow pod.
        executor: yaml({
          resources: k.resources('10m', '64Mi', memoryLimit='256Mi'),
          securityContext: k.securityContext(runAsUser=8737),
        }),
      }, controllerLabels),

      k.deployment('workflow-controller', ns, controllerSelector, {
        serviceAccountName: 'argo',
        securityContext: k.podSecurityContext(),
        containers: [{
          name: 'workflow-controller',
          image: p.controllerImage,
          command: ['workflow-controller'],
          args: ['--configmap', 'workflow-controller-configmap', '--executor-image', p.executorImage, '--namespaced', '--managed-namespace', ns],
          env: [k.fieldEnv('LEADER_ELECTION_IDENTITY', 'metadata.name')],
          ports: [{ name: 'metrics', containerPort: 9090 }, { name: 'health', containerPort: 6060 }],
          resources: k.resources('100m', '256Mi'),
          livenessProbe: k.httpProbe('/healthz', 'health', initialDelaySeconds=90, periodSeconds=60, timeoutSeconds=30),
          readinessProbe: k.httpProbe('/healthz', 'health', initialDelaySeconds=10, periodSeconds=20),
          securityContext: k.securityContext(runAsUser=8737),
        }],
      }, labels=controllerLabels),

      k.service('argo-server',
                ns,
                serverSelector,
                [{ name: 'web', port: 2746, targetPort: 'web' }],
                labels=serverLabels,
                annotations=if routed then k.ambassadorConfig(routes) else {}),
      k.httpRoutes(env, routes, serverLabels),
      k.deployment('argo-server', ns, serverSelector, {
        serviceAccountName: 'argo-server',
        securityContext: k.podSecurityContext(),
        containers: [{
          name: 'argo-server',
          image: p.serverImage,
          // --base-href (cmd/argo/commands/server.go@v3.7.18) only rewrites index.html's <base>:
          // the gateway strips /argo/. X-Frame-Options SAMEORIGIN instead of the default DENY
          // lets the central dashboard, served from the same gateway, show the UI in its iframe.
          args: ['server', '--namespaced', '--managed-namespace=' + ns, '--auth-mode=' + p.authMode, '--base-href=/argo/', '--x-frame-options=SAMEORIGIN']
                + (if secure then [] else ['--secure=false']),
          ports: [{ name: 'web', containerPort: 2746 }],
          resources: k.resources('50m', '128Mi', memoryLimit='256Mi'),
          readinessProbe: k.httpProbe('/', 'web', initialDelaySeconds=10, periodSeconds=20, scheme=if secure then 'HTTPS' else 'HTTP'),
          livenessProbe: k.httpProbe('/', 'web', initialDelaySeconds=30, periodSeconds=30, scheme=if secure then 'HTTPS' else 'HTTP'),
          securityContext: k.securityContext(runAsUser=8737),
          volumeMounts: [k.tmpMount],
        }],
        volumes: [k.tmpVolume],
      }, labels=serverLabels),
    ],
}
