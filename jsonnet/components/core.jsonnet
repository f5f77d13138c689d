// core: the platform namespace, its service account and the RBAC it needs.
local k = import 'kfdeploy/k.libsonnet';

{
  description: 'Platform namespace, service account and namespace-scoped RBAC',
  params: {
    serviceAccount: { default: 'kubeflow', description: 'Name of the platform service account' },
    namespaceLabels: {
      default: {},
      description: "Extra labels for the namespace, e.g. {'pod-security.kubernetes.io/enforce': 'baseline'} (the namespace always carries katib.kubeflow.org/metrics-collector-injection: enabled, which Katib's Experiment validator requires)",
    },
  },
  render(p, env):: [
    // Katib's Experiment validator refuses Experiments in a namespace without this label
    // (pkg/webhook/v1beta1/experiment/validation_webhook.go@v0.19.0). It puts no pod behind
    // Katib's webhook: the katib component selects trial pods by their owners.
    k.namespace(env.namespace, labels=k.labels('core', env.namespace) + { 'katib.kubeflow.org/metrics-collector-injection': 'enabled' } + p.namespaceLabels),
    k.serviceAccount(p.serviceAccount, env.namespace, k.labels('core')),
    k.role(p.serviceAccount, env.namespace, [
      // Read-only view of the namespace's workloads: what the dashboards need, nothing more.
      k.rule([''], ['pods', 'pods/log', 'services', 'events', 'persistentvolumeclaims', 'configmaps'], k.read),
      k.rule(['apps'], ['deployments', 'statefulsets'], k.read),
    ], k.labels('core')),
    k.roleBinding(p.serviceAccount, env.namespace, p.serviceAccount, [p.serviceAccount], k.labels('core')),
  ],
}
