// core: the platform namespace, its service account and the RBAC it needs.
local k = import 'kfdeploy/k.libsonnet';

{
  description: 'Platform namespace, service account and namespace-scoped RBAC',
  params: {
    serviceAccount: { default: 'kubeflow', description: 'Name of the platform service account' },
  },
  render(p, env):: [
    k.namespace(env.namespace, labels=k.labels('core', env.namespace)),
    k.serviceAccount(p.serviceAccount, env.namespace, k.labels('core')),
    k.object('rbac.authorization.k8s.io/v1', 'Role', p.serviceAccount, env.namespace, k.labels('core')) + {
      // Read-only view of the namespace's workloads: what the dashboards need, nothing more.
      rules: [
        { apiGroups: [''], resources: ['pods', 'pods/log', 'services', 'events', 'persistentvolumeclaims', 'configmaps'], verbs: ['get', 'list', 'watch'] },
        { apiGroups: ['apps'], resources: ['deployments', 'statefulsets'], verbs: ['get', 'list', 'watch'] },
      ],
    },
    k.object('rbac.authorization.k8s.io/v1', 'RoleBinding', p.serviceAccount, env.namespace, k.labels('core')) + {
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: p.serviceAccount },
      subjects: [{ kind: 'ServiceAccount', name: p.serviceAccount, namespace: env.namespace }],
    },
  ],
}
