// katib: hyperparameter tuning (Katib v0.19.0). The Katib controller runs Experiments: for each
// it starts the suggestion service of the chosen algorithm (random and grid by default,
// configured in katib-config) and runs Trials as Jobs/TFJobs/PyTorchJobs; its pod webhook adds
// the metrics collector to trial pods, which reports to the db-manager, which stores the
// trials' metrics in MySQL (on a PersistentVolumeClaim); the UI is routed at /katib/.
local crds = import 'crds.libsonnet';
local images = import 'kfdeploy/images.libsonnet';
local k = import 'kfdeploy/k.libsonnet';
local mysql = import 'kfdeploy/mysql.libsonnet';

local failurePolicies = ['Ignore', 'Fail'];

{
  description: 'Katib hyperparameter tuning: controller, db-manager, MySQL on a PVC, UI (at /katib/) with trial templates, random and grid suggestion services, Experiment/Suggestion/Trial CRDs',
  params: {
    controllerImage: { default: images.katibController, description: 'Katib controller image' },
    dbManagerImage: { default: images.katibDbManager, description: 'Katib db-manager image' },
    uiImage: { default: images.katibUi, description: 'Katib UI image' },
    uiRoute: { default: false, description: "Route the Katib UI (/katib/) through the gateway; it has no sign-in here (Katib's APP_DISABLE_AUTH defaults to true), so anyone who reaches the gateway could then create Experiments" },
    mysqlImage: { default: images.mysql, description: 'MySQL image' },
    suggestions: {
      default: { random: images.katibSuggestions.random, grid: images.katibSuggestions.grid },
      description: 'Suggestion algorithms to offer, each with its service image (known: %s); Experiments may only use these' % std.join(', ', std.objectFields(images.katibSuggestions)),
    },
    trialResources: {
      default: ['Job.v1.batch', 'TFJob.v1.kubeflow.org', 'PyTorchJob.v1.kubeflow.org'],
      description: 'Kinds (Kind.version.group) that trials may run',
    },
    storageSize: { default: '10Gi', description: "Size of MySQL's volume" },
    storageClass: { default: null, description: "StorageClass of MySQL's volume (null: cluster default; '': pre-created PVs only)" },
    webhookFailurePolicy: { default: 'Fail', description: "What the API server does when Katib's webhooks are unreachable: Fail (Katib's default: Experiments are refused and trial pods wait) or Ignore (Experiments are admitted on the CRD schemas alone; trial pods start without a metrics collector and their trials end MetricsUnavailable)" },
  },
  secrets: {
    mysqlRootPassword: { description: "Password of MySQL's root user (katib database)" },
    mysqlPassword: { description: 'Password of the katib MySQL user the db-manager connects as' },
  },
  // Images the controller starts or injects (katib-config, whose images Katib has no
  // compiled-in defaults for), and the training image of the UI's trial templates.
  runtimeImages(p, env):: [
    { image: images.katibFileMetricsCollector, use: 'metrics collector sidecar of trial pods, kinds StdOut and File (katib-config)' },
    { image: images.katibTfEventMetricsCollector, use: 'metrics collector sidecar of trial pods, kind TensorFlowEvent (katib-config)' },
    { image: images.katibEarlyStoppingMedianStop, use: 'early stopping medianstop (katib-config)' },
    { image: images.katibTrialPytorchMnist, use: 'training container of the UI trial templates (ConfigMap trial-templates)' },
  ] + [
    { image: p.suggestions[a], use: 'suggestion service %s, one Deployment per Experiment (katib-config)' % a }
    for a in std.objectFields(p.suggestions)
  ],
  render(p, env)::
    local algorithms = std.objectFields(p.suggestions);
    local unknown = [a for a in algorithms if !std.objectHas(images.katibSuggestions, a)];
    assert std.length(algorithms) > 0 : 'katib: suggestions must name at least one algorithm';
    assert std.length(unknown) == 0 : 'katib: unknown suggestion algorithm(s) %s (known: %s)' % [std.join(', ', unknown), std.join(', ', std.objectFields(images.katibSuggestions))];
    assert std.member(failurePolicies, p.webhookFailurePolicy) : 'katib: webhookFailurePolicy must be Ignore or Fail, got %s' % p.webhookFailurePolicy;
    local ns = env.namespace;
    local labels = k.labels('katib');
    local part(name) = { labels: k.labels('katib', name), selector: k.selector('katib', name) };
    local controller = part('katib-controller');
    local db = part('katib-mysql');
    local dbManager = part('katib-db-manager');
    local ui = part('katib-ui');
    // The UI creates Experiments as its own account, for anyone it lets in: admins only.
    local uiRoutes = if p.uiRoute then [k.mapping('katib', '/katib/', 'katib-ui', ns, 80, rewrite='/katib/', signIn='none', ui='Katib', allowed='admins')] else [];
    // The suggestion services' containers (Katib takes a container spec for them; it has no
    // such setting for the metrics collector and early-stopping sidecars of trial pods). Katib
    // starts them per Experiment with the images' own user and a writable root, as upstream.
    local restricted = {
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    };
    local mnist(extra) = ['python3', '/opt/pytorch-mnist/mnist.py', '--epochs=1'] + extra + [
      '--lr=${trialParameters.learningRate}',
      '--momentum=${trialParameters.momentum}',
    ];
    local trainingResources = { requests: { cpu: '250m', memory: '512Mi' }, limits: { memory: '1Gi' } };
    local trialTemplates = {
      'defaultTrialTemplate.yaml': std.manifestYamlDoc({
        apiVersion: 'batch/v1',
        kind: 'Job',
        spec: { template: { spec: {
          containers: [{ name: 'training-container', image: images.katibTrialPytorchMnist, command: mnist(['--batch-size=16']), resources: trainingResources }],
          restartPolicy: 'Never',
        } + k.pullSecrets(env) } },
      }, quote_keys=false),
      'pytorchJobTemplate.yaml': std.manifestYamlDoc({
        apiVersion: 'kubeflow.org/v1',
        kind: 'PyTorchJob',
        spec: { pytorchReplicaSpecs: {
          [role]: {
            replicas: replicas,
            restartPolicy: 'OnFailure',
            template: { spec: { containers: [{ name: 'pytorch', image: images.katibTrialPytorchMnist, command: mnist([]), resources: trainingResources }] } + k.pullSecrets(env) },
          }
          for role in ['Master', 'Worker']
          for replicas in [if role == 'Master' then 1 else 2]
        } },
      }, quote_keys=false),
    };
    // With pull secrets, the suggestion services run as a ServiceAccount of this namespace that
    // carries them (render adds them to every ServiceAccount it renders). Katib then creates no
    // account of its own for early stopping (pkg/controller.v1beta1/suggestion/composer/composer.go@v0.19.0),
    // so this one may update Trials as that one may.
    local pulls = std.length(k.pullSecrets(env)) > 0;
    local suggestionAccount = 'katib-suggestion';
    local katibConfig = {
      apiVersion: 'config.kubeflow.org/v1beta1',
      kind: 'KatibConfig',
      init: {
        // Katib's certificate generator is off: it would read Secrets through a cluster-wide
        // cache. kfdeploy issues the webhook's certificate into katib-webhook-cert (see below);
        // with enable false and no webhookServiceName/webhookSecretName (either would switch it
        // back on, pkg/apis/config/v1beta1/defaults.go@v0.19.0), the controller only reads
        // tls.crt and tls.key from /tmp/cert (cmd/katib-controller/v1beta1/main.go@v0.19.0).
        certGenerator: { enable: false },
        controller: { webhookPort: 8443, trialResources: p.trialResources },
      },
      runtime: {
        metricsCollectors: [
          { kind: 'StdOut', image: images.katibFileMetricsCollector },
          { kind: 'File', image: images.katibFileMetricsCollector },
          { kind: 'TensorFlowEvent', image: images.katibTfEventMetricsCollector, resources: { limits: { memory: '1Gi' } } },
        ],
        suggestions: [
          {
            algorithmName: a,
            image: p.suggestions[a],
            securityContext: restricted,
            // Katib's suggestion config has no pull secrets of its own: the pods run as a
            // ServiceAccount that carries them (suggestionAccount below).
            [if pulls then 'serviceAccountName']: suggestionAccount,
          }
          for a in algorithms
        ],
        earlyStoppings: [{ algorithmName: 'medianstop', image: images.katibEarlyStoppingMedianStop }],
      },
    };
    local webhook(name, path, rules, extra={}) = {
      name: name,
      sideEffects: 'None',
      failurePolicy: p.webhookFailurePolicy,
      timeoutSeconds: 5,
      admissionReviewVersions: ['v1'],
      // The caBundle is the CA that issued katib-webhook-cert, filled in by kfdeploy
      // (kfdeploy.dev/ca-bundle on the configurations).
      clientConfig: { service: { name: 'katib-controller', namespace: ns, path: path, port: 443 } },
      rules: rules,
    } + extra;
    // Pods Katib mutates: those controlled by a kind that trials run as (Kind.version.group in
    // trialResources). Katib finds a trial pod by walking its owners up to a Trial
    // (pkg/webhook/v1beta1/pod/inject_webhook.go@v0.19.0); at creation a trial pod carries no
    // Katib label (the webhook adds katib.kubeflow.org/trial), so owners are the only sign.
    // Upstream instead sends every pod of namespaces labelled
    // katib.kubeflow.org/metrics-collector-injection=enabled, which would put the notebooks and
    // the gateway of the app's namespace behind Katib's webhook.
    local trialOwners = [
      local parts = std.split(r, '.');
      local group = std.join('.', parts[2:]);
      { kind: parts[0], apiVersion: (if group == '' then parts[1] else group + '/' + parts[1]) }
      for r in p.trialResources
    ];
    local ownedByTrialKind = "has(object.metadata.ownerReferences) && object.metadata.ownerReferences.exists(o, has(o.controller) && o.controller && (%s))" % std.join(' || ', [
      "(o.apiVersion == '%s' && o.kind == '%s')" % [t.apiVersion, t.kind]
      for t in trialOwners
    ]);
    local caBundle = { 'kfdeploy.dev/ca-bundle': 'katib/webhook' };
    local experimentRules = [{ apiGroups: ['kubeflow.org'], apiVersions: ['v1beta1'], operations: ['CREATE', 'UPDATE'], resources: ['experiments'] }];
    [
      crds(algorithms, labels),

      // Controller. Cluster scope is required: Katib runs Experiments of every namespace,
      // creating the trials' Jobs and the suggestion Deployments/Services/PVCs next to each
      // Experiment (Katib has no single-namespace mode). No Secrets and no webhook
      // configurations: with its certificate generator off, nothing in the controller reads or
      // writes them (only pkg/certgenerator/v1beta1/generator.go@v0.19.0 does).
      k.serviceAccount('katib-controller', ns, controller.labels),
      k.clusterAccess('katib-controller', ns, [
        k.rule([''], ['services'], ['get', 'list', 'watch', 'create', 'delete']),
        k.rule([''], ['events'], ['create', 'patch', 'update']),
        k.rule([''], ['serviceaccounts', 'persistentvolumes', 'persistentvolumeclaims'], ['get', 'list', 'watch', 'create']),
        k.rule([''], ['namespaces', 'configmaps'], k.read),
        k.rule([''], ['pods', 'pods/status'], ['get']),
        k.rule(['apps'], ['deployments'], ['get', 'list', 'watch', 'create', 'delete']),
        k.rule(['rbac.authorization.k8s.io'], ['roles', 'rolebindings'], ['get', 'create', 'list', 'watch']),
        k.rule(['batch'], ['jobs', 'cronjobs'], ['get', 'list', 'watch', 'create', 'delete']),
        k.rule(['kubeflow.org'], ['tfjobs', 'pytorchjobs', 'mpijobs', 'xgboostjobs'], ['get', 'list', 'watch', 'create', 'delete']),
        k.rule(['kubeflow.org'], ['experiments', 'experiments/status', 'experiments/finalizers', 'trials', 'trials/status', 'trials/finalizers', 'suggestions', 'suggestions/status', 'suggestions/finalizers'], ['*']),
      ], controller.labels, serviceAccount='katib-controller'),
      if pulls then k.namespacedAccess(suggestionAccount, ns, [
        k.rule(['kubeflow.org'], ['trials', 'trials/status'], k.read + ['update', 'patch']),
      ], controller.labels) else [],
      k.configMap('katib-config', ns, { 'katib-config.yaml': std.manifestYamlDoc(katibConfig, quote_keys=false) }, controller.labels),
      // The webhook server's certificate, which kfdeploy issues from a CA of its own and keeps
      // in secrets.yaml (annotations kfdeploy.dev/certificate*: the names it must cover); only
      // the API server trusts that CA, through the caBundle of the configurations below.
      // Opaque, as before: a Secret's type cannot change.
      k.object('v1', 'Secret', 'katib-webhook-cert', ns, controller.labels, {
        'kfdeploy.dev/certificate': 'katib/webhook',
        'kfdeploy.dev/certificate-dns-names': std.join(',', ['katib-controller.%s.svc' % ns, 'katib-controller.%s.svc.cluster.local' % ns]),
        'kfdeploy.dev/certificate-trusted-by': 'apiserver',
      }) + { type: 'Opaque' },
      k.service('katib-controller', ns, controller.selector, [
        { name: 'webhook', port: 443, targetPort: 'webhook' },
        { name: 'metrics', port: 8080, targetPort: 'metrics' },
      ], labels=controller.labels),
      k.deployment('katib-controller',
                   ns,
                   controller.selector,
                   {
                     serviceAccountName: 'katib-controller',
                     securityContext: k.podSecurityContext(),
                     containers: [{
                       name: 'katib-controller',
                       image: p.controllerImage,
                       command: ['./katib-controller'],
                       args: ['--katib-config=/katib-config.yaml'],
                       env: [k.fieldEnv('KATIB_CORE_NAMESPACE', 'metadata.namespace')],
                       ports: [
                         { name: 'webhook', containerPort: 8443 },
                         { name: 'metrics', containerPort: 8080 },
                         { name: 'healthz', containerPort: 18080 },
                       ],
                       resources: k.resources('100m', '256Mi', memoryLimit='512Mi'),
                       readinessProbe: k.httpProbe('/readyz', 'healthz'),
                       livenessProbe: k.httpProbe('/healthz', 'healthz', initialDelaySeconds=15),
                       securityContext: k.securityContext(runAsUser=65532),
                       volumeMounts: [
                         { name: 'cert', mountPath: '/tmp/cert', readOnly: true },
                         { name: 'config', mountPath: '/katib-config.yaml', subPath: 'katib-config.yaml', readOnly: true },
                         k.tmpMount,
                       ],
                     }],
                     volumes: [
                       { name: 'cert', secret: { secretName: 'katib-webhook-cert', defaultMode: 420 } },
                       { name: 'config', configMap: { name: 'katib-config' } },
                       k.tmpVolume,
                     ],
                   },
                   labels=controller.labels,
                   // Restart the controller when katib-config changes (it reads it at start).
                   podAnnotations={ 'kfdeploy.dev/config-hash': std.md5(std.manifestJson(katibConfig)) }),
      // Named katib.kubeflow.org as upstream's (so there is one Katib per cluster).
      k.object('admissionregistration.k8s.io/v1', 'ValidatingWebhookConfiguration', 'katib.kubeflow.org', labels=controller.labels, annotations=caBundle) + {
        webhooks: [webhook('validator.experiment.katib.kubeflow.org', '/validate-experiment', experimentRules)],
      },
      k.object('admissionregistration.k8s.io/v1', 'MutatingWebhookConfiguration', 'katib.kubeflow.org', labels=controller.labels, annotations=caBundle) + {
        webhooks: [
          webhook('defaulter.experiment.katib.kubeflow.org', '/mutate-experiment', experimentRules),
          // Adds the metrics collector to trial pods, in every namespace (Katib runs Experiments
          // of every namespace); see trialOwners. Pods of plain Jobs and TFJobs pass too (Katib
          // admits them unchanged); while Katib is down their controllers retry them.
          webhook('mutator.pod.katib.kubeflow.org',
                  '/mutate-pod',
                  [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'] }],
                  {
                    matchConditions: [
                      // As upstream (components/webhook/webhooks.yaml@v0.19.0).
                      { name: 'exclude-katib-controller', expression: 'request.userInfo.username != "system:serviceaccount:%s:katib-controller"' % ns },
                      { name: 'trial-workload-pods', expression: ownedByTrialKind },
                    ],
                  }),
        ],
      },

      // Database.
      mysql.server('katib-mysql',
                   ns,
                   p.mysqlImage,
                   'katib',
                   'katib',
                   env.secrets.mysqlRootPassword,
                   env.secrets.mysqlPassword,
                   p.storageSize,
                   p.storageClass,
                   db.labels,
                   db.selector),
      k.service('katib-db-manager', ns, dbManager.selector, [{ name: 'api', port: 6789, targetPort: 'api' }], labels=dbManager.labels),
      k.deployment('katib-db-manager', ns, dbManager.selector, {
        automountServiceAccountToken: false,
        securityContext: k.podSecurityContext(),
        containers: [{
          name: 'katib-db-manager',
          image: p.dbManagerImage,
          command: ['./katib-db-manager'],
          env: [
            k.env('DB_NAME', 'mysql'),
            k.secretEnv('DB_USER', 'katib-mysql-secrets', 'user'),
            k.secretEnv('DB_PASSWORD', 'katib-mysql-secrets', 'password'),
            k.env('KATIB_MYSQL_DB_HOST', 'katib-mysql'),
            k.env('KATIB_MYSQL_DB_PORT', '3306'),
            k.env('KATIB_MYSQL_DB_DATABASE', 'katib'),
          ],
          ports: [{ name: 'api', containerPort: 6789 }],
          resources: k.resources('50m', '64Mi', memoryLimit='256Mi'),
          readinessProbe: k.grpcProbe(6789, initialDelaySeconds=5),
          livenessProbe: k.grpcProbe(6789, initialDelaySeconds=10, periodSeconds=60),
          securityContext: k.securityContext(runAsUser=65532),
        }],
      }, labels=dbManager.labels),

      // UI: manages Experiments and trial templates of this namespace. It is given no access to
      // namespaces: when it cannot list them it works in its own namespace only
      // (getAvailableNamespaces, pkg/ui/v1beta1/util.go@v0.19.0), so it never lists trial-template
      // ConfigMaps in namespaces it cannot read.
      k.namespacedAccess('katib-ui', ns, [
        k.rule(['kubeflow.org'], ['experiments', 'trials', 'suggestions'], k.read + k.write),
        k.rule([''], ['configmaps'], k.read + k.write),
        k.rule([''], ['pods', 'pods/log', 'events'], ['get', 'list']),
      ], ui.labels),
      // The trial templates the UI offers on its create-experiment page: ConfigMaps labelled
      // katib.kubeflow.org/component=trial-templates (pkg/controller.v1beta1/consts/const.go@v0.19.0),
      // as upstream ships them (components/controller/trial-templates.yaml@v0.19.0).
      k.configMap('trial-templates', ns, trialTemplates, ui.labels + { 'katib.kubeflow.org/component': 'trial-templates' }),
      k.service('katib-ui',
                ns,
                ui.selector,
                [{ name: 'http', port: 80, targetPort: 'http' }],
                labels=ui.labels,
                annotations=if p.uiRoute then k.ambassadorConfig(uiRoutes) else {}),
      k.httpRoutes(env, uiRoutes, ui.labels),
      k.deployment('katib-ui', ns, ui.selector, {
        serviceAccountName: 'katib-ui',
        securityContext: k.podSecurityContext(),
        containers: [{
          name: 'katib-ui',
          image: p.uiImage,
          command: ['./katib-ui'],
          args: ['--port=8080'],
          env: [k.fieldEnv('KATIB_CORE_NAMESPACE', 'metadata.namespace')],
          ports: [{ name: 'http', containerPort: 8080 }],
          resources: k.resources('50m', '64Mi', memoryLimit='256Mi'),
          readinessProbe: k.httpProbe('/katib/', 'http'),
          livenessProbe: k.httpProbe('/katib/', 'http', initialDelaySeconds=15, periodSeconds=30),
          securityContext: k.securityContext(runAsUser=65532),
        }],
      }, labels=ui.labels),
    ],
}
