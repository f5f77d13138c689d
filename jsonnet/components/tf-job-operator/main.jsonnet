// tf-job-operator: the Kubeflow Training Operator v1.9.4 (the successor of v0.3's tf-operator),
// running TFJobs and PyTorchJobs of this namespace, with its validating webhooks.
//
// Everything below is held against github.com/kubeflow/training-operator at v1.9.4:
// cmd/training-operator.v1/main.go (flags, webhook configuration name), pkg/cert/cert.go (the
// certificate the operator generates), the kubebuilder RBAC markers and client calls of
// pkg/controller.v1/{tensorflow,pytorch,common,control}, and manifests/base (ports, probes,
// the certificate volume). pkg/render/trainop_test.go checks the rendering against these facts.
local crds = import 'crds.libsonnet';
local images = import 'kfdeploy/images.libsonnet';
local k = import 'kfdeploy/k.libsonnet';

// Fixed by the operator: main.go names its ValidatingWebhookConfiguration with a constant, and
// pkg/cert/cert.go writes its serving certificate to this directory.
local webhookConfigurationName = 'validator.training-operator.kubeflow.org';
local certDir = '/tmp/k8s-webhook-server/serving-certs';

{
  description: 'Kubeflow Training Operator running TFJobs and PyTorchJobs of this namespace, with the TFJob and PyTorchJob CRDs and validating webhooks',
  params: {
    image: { default: images.trainingOperator, description: 'Training operator image' },
    webhookFailurePolicy: { default: 'Fail', description: "What the API server does with a TFJob or PyTorchJob when the operator's webhook is unreachable: Fail (upstream's policy) or Ignore (the CRD schemas still validate)" },
    pytorchInitImage: { default: images.trainingOperatorPytorchInit, description: "Image of the init container the operator adds to PyTorchJob workers (waits for the master's Service)" },
  },
  // The operator's compiled-in default, alpine:3.10 (pkg/config/config.go@v1.9.4), is rendered
  // as the explicit --pytorch-init-container-image below so that a mirror can rewrite it. The
  // MPI launcher's kubectl-delivery image (--mpi-kubectl-delivery-image) is never pulled: the
  // MPIJob scheme is not enabled.
  runtimeImages(p, env):: [
    { image: p.pytorchInitImage, use: "init container of PyTorchJob workers, waiting for the master's Service (--pytorch-init-container-image)" },
  ],
  render(p, env)::
    assert std.member(['Fail', 'Ignore'], p.webhookFailurePolicy) : 'tf-job-operator: webhookFailurePolicy must be Fail or Ignore, got %s' % p.webhookFailurePolicy;
    local ns = env.namespace;
    local name = 'training-operator';
    local secretName = 'training-operator-webhook-cert';
    local labels = k.labels('tf-job-operator', name);
    local selector = k.selector('tf-job-operator', name);
    local jobs = ['tfjobs', 'pytorchjobs'];
    local webhook(kind, resource) = {
      name: 'validator.%s.training-operator.kubeflow.org' % kind,
      admissionReviewVersions: ['v1'],
      sideEffects: 'None',
      failurePolicy: p.webhookFailurePolicy,
      // No caBundle here: the operator's certificate rotator writes it, and kfdeploy must not
      // own (and reset) it.
      clientConfig: { service: { name: name, namespace: ns, path: '/validate-kubeflow-org-v1-' + kind, port: 443 } },
      // The operator runs the jobs of this namespace only.
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } },
      rules: [{ apiGroups: ['kubeflow.org'], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: [resource] }],
    };
    [
      crds(k.labels('tf-job-operator')),
      // --namespace limits the manager's cache to this namespace, so a Role covers the jobs,
      // pods, Services, events and HPAs (verbs: the client calls, not the wider kubebuilder
      // markers, which also serve the MPI, XGBoost, Paddle and JAX controllers not enabled here).
      k.namespacedAccess(name, ns, [
        // Get/list/watch through the cache and the API reader; delete when ttlSecondsAfterFinished expires.
        k.rule(['kubeflow.org'], jobs, ['get', 'list', 'watch', 'delete']),
        // Status().Update is the only status write.
        k.rule(['kubeflow.org'], [j + '/status' for j in jobs], ['update']),
        // Pods and Services carry blockOwnerDeletion owner references to their job.
        k.rule(['kubeflow.org'], [j + '/finalizers' for j in jobs], ['update']),
        // Patch: adopting and releasing pods and Services (pkg/controller.v1/control).
        k.rule([''], ['pods', 'services'], ['get', 'list', 'watch', 'create', 'patch', 'delete']),
        // client-go's event recorder creates events and patches repeated ones.
        k.rule([''], ['events'], ['create', 'patch']),
        // The PyTorchJob controller manages one HPA per elastic job (pkg/controller.v1/pytorch/hpa.go).
        k.rule(['autoscaling'], ['horizontalpodautoscalers'], ['get', 'list', 'watch', 'create', 'update', 'delete']),
        // The certificate rotator caches the Secrets of its namespace (cert-controller's
        // namespaced cache lists them all) and writes its own.
        k.rule([''], ['secrets'], ['list', 'watch']),
        k.rule([''], ['secrets'], ['get', 'update'], resourceNames=[secretName]),
      ], labels),
      // Cluster scope only for the webhook configuration, which is cluster-scoped: the rotator
      // watches it through an informer (list/watch cannot be limited by name) and writes the CA
      // into it.
      k.clusterAccess(name, ns, [
        k.rule(['admissionregistration.k8s.io'], ['validatingwebhookconfigurations'], ['list', 'watch']),
        k.rule(['admissionregistration.k8s.io'], ['validatingwebhookconfigurations'], ['get', 'update'], resourceNames=[webhookConfigurationName]),
      ], labels),
      // The operator fills this Secret with its CA and serving certificate (it updates, never
      // creates, it), and the pod mounts it as the webhook server's certificate directory.
      k.emptySecret(secretName, ns, labels),
      k.service(name, ns, selector, [
        { name: 'metrics', port: 8080, targetPort: 'metrics' },
        { name: 'webhook', port: 443, targetPort: 'webhook' },
      ], labels=labels),
      k.deployment(name, ns, selector, {
        serviceAccountName: name,
        securityContext: k.podSecurityContext(),
        terminationGracePeriodSeconds: 10,
        containers: [{
          name: 'training-operator',
          image: p.image,
          command: ['/manager'],
          args: [
            '--namespace=' + ns,
            '--enable-scheme=tfjob',
            '--enable-scheme=pytorchjob',
            '--metrics-bind-address=:8080',
            '--health-probe-bind-address=:8081',
            '--webhook-server-port=9443',
            // The certificate is issued for <service>.<namespace>.svc.
            '--webhook-service-name=' + name,
            '--webhook-secret-name=' + secretName,
            '--pytorch-init-container-image=' + p.pytorchInitImage,
          ],
          env: [
            // pkg/cert/cert.go: the namespace of the certificate Secret and of the Service.
            k.fieldEnv('MY_POD_NAMESPACE', 'metadata.namespace'),
            k.fieldEnv('MY_POD_NAME', 'metadata.name'),
          ],
          ports: [
            { name: 'metrics', containerPort: 8080 },
            { name: 'health', containerPort: 8081 },
            { name: 'webhook', containerPort: 9443 },
          ],
          resources: k.resources('100m', '128Mi', memoryLimit='512Mi'),
          livenessProbe: k.httpProbe('/healthz', 'health', initialDelaySeconds=15, periodSeconds=20, timeoutSeconds=3),
          // Ready once the certificate is in place and the webhook server listens (main.go).
          readinessProbe: k.httpProbe('/readyz', 'health', initialDelaySeconds=10, periodSeconds=15, timeoutSeconds=3),
          // The image is distroless/static, whose default user is root: run as its nonroot user.
          securityContext: k.securityContext(runAsUser=65532),
          volumeMounts: [{ name: 'cert', mountPath: certDir, readOnly: true }],
        }],
        volumes: [{ name: 'cert', secret: { secretName: secretName, defaultMode: 420 } }],
      }, labels=labels) + {
        // The operator runs without leader election (main.go has no flag for the lease's
        // namespace outside a pod), so a rollout stops the old manager before it starts the new
        // one. Not Recreate: server-side apply cannot switch a Deployment applied without a
        // strategy (the API server defaulted rollingUpdate) to Recreate.
        spec+: { strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 0, maxUnavailable: 1 } } },
      },
      k.object('admissionregistration.k8s.io/v1', 'ValidatingWebhookConfiguration', webhookConfigurationName, labels=labels) + {
        webhooks: [webhook('tfjob', 'tfjobs'), webhook('pytorchjob', 'pytorchjobs')],
      },
    ],
}
