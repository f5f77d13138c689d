// tf-job-operator: the Kubeflow Training Operator (the successor of v0.3's tf-operator), running
// TFJobs and PyTorchJobs of this namespace.
local crds = import 'crds.libsonnet';
local images = import 'kfdeploy/images.libsonnet';
local k = import 'kfdeploy/k.libsonnet';

{
  description: 'Kubeflow Training Operator running TFJobs and PyTorchJobs of this namespace, with the TFJob and PyTorchJob CRDs',
  params: {
    image: { default: images.trainingOperator, description: 'Training operator image' },
  },
  render(p, env)::
    local ns = env.namespace;
    local name = 'training-operator';
    local labels = k.labels('tf-job-operator', name);
    local selector = k.selector('tf-job-operator', name);
    [
      crds(k.labels('tf-job-operator')),
      // The operator watches this namespace only (--namespace), so a Role suffices.
      k.namespacedAccess(name, ns, [
        k.rule(['kubeflow.org'], ['tfjobs', 'tfjobs/status', 'tfjobs/finalizers', 'pytorchjobs', 'pytorchjobs/status', 'pytorchjobs/finalizers'], k.read + k.write),
        k.rule([''], ['pods', 'pods/exec', 'services', 'configmaps', 'serviceaccounts'], k.read + k.write),
        k.rule([''], ['events'], k.read + k.write),
        k.rule(['autoscaling'], ['horizontalpodautoscalers'], k.read + k.write),
        k.rule(['coordination.k8s.io'], ['leases'], ['get', 'create', 'update']),
      ], labels),
      k.service(name, ns, selector, [{ name: 'metrics', port: 8080, targetPort: 'metrics' }], labels=labels),
      k.deployment(name, ns, selector, {
        serviceAccountName: name,
        securityContext: k.podSecurityContext(),
        containers: [{
          name: 'training-operator',
          image: p.image,
          command: ['/manager'],
          args: ['--namespace=' + ns, '--enable-scheme=tfjob', '--enable-scheme=pytorchjob'],
          env: [
            k.fieldEnv('MY_POD_NAMESPACE', 'metadata.namespace'),
            k.fieldEnv('MY_POD_NAME', 'metadata.name'),
          ],
          ports: [{ name: 'metrics', containerPort: 8080 }, { name: 'health', containerPort: 8081 }],
          resources: k.resources('100m', '128Mi', memoryLimit='512Mi'),
          livenessProbe: k.httpProbe('/healthz', 'health', initialDelaySeconds=15, periodSeconds=20),
          readinessProbe: k.httpProbe('/readyz', 'health', initialDelaySeconds=10, periodSeconds=15),
          securityContext: k.securityContext(runAsUser=65532),
        }],
      }, labels=labels),
    ],
}
