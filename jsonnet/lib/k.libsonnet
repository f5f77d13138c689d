// Helpers shared by every component: object constructors, labels, resources, probes.
{
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

  object(apiVersion, kind, name, namespace=null, labels={}):: {
    apiVersion: apiVersion,
    kind: kind,
    metadata: {
      name: name,
      [if namespace != null then 'namespace']: namespace,
      [if std.length(labels) > 0 then 'labels']: labels,
    },
  },

  namespace(name, labels={}):: $.object('v1', 'Namespace', name, labels=labels),

  serviceAccount(name, namespace, labels={}):: $.object('v1', 'ServiceAccount', name, namespace, labels),

  // Resource requirements; gpus > 0 adds the GPU resource to limits (and requests).
  resources(cpu, memory, gpus=0, gpuResource='nvidia.com/gpu', cpuLimit=null, memoryLimit=null):: {
    requests: { cpu: cpu, memory: memory } + (if gpus > 0 then { [gpuResource]: gpus } else {}),
    limits: { memory: if memoryLimit != null then memoryLimit else memory }
            + (if cpuLimit != null then { cpu: cpuLimit } else {})
            + (if gpus > 0 then { [gpuResource]: gpus } else {}),
  },

  httpProbe(path, port, initialDelaySeconds=5, periodSeconds=10):: {
    httpGet: { path: path, port: port },
    initialDelaySeconds: initialDelaySeconds,
    periodSeconds: periodSeconds,
  },

  tcpProbe(port, initialDelaySeconds=5, periodSeconds=10):: {
    tcpSocket: { port: port },
    initialDelaySeconds: initialDelaySeconds,
    periodSeconds: periodSeconds,
  },

  // A restrictive container security context; readOnlyRoot=false where the image writes to /.
  securityContext(runAsUser=1000, readOnlyRoot=true):: {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: readOnlyRoot,
    runAsNonRoot: true,
    [if runAsUser != null then 'runAsUser']: runAsUser,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  },

  pvc(name, namespace, size, storageClass=null, accessModes=['ReadWriteOnce'], labels={}):: $.object('v1', 'PersistentVolumeClaim', name, namespace, labels) + {
    spec: {
      accessModes: accessModes,
      resources: { requests: { storage: size } },
      // null: the cluster's default StorageClass; '' binds to PVs without a class.
      [if storageClass != null then 'storageClassName']: storageClass,
    },
  },

  service(name, namespace, selector, ports, type='ClusterIP', labels={}):: $.object('v1', 'Service', name, namespace, labels) + {
    spec: { type: type, selector: selector, ports: ports },
  },

  deployment(name, namespace, selector, podSpec, replicas=1, labels={}):: $.object('apps/v1', 'Deployment', name, namespace, labels) + {
    spec: {
      replicas: replicas,
      selector: { matchLabels: selector },
      template: {
        metadata: { labels: labels + selector },
        spec: podSpec,
      },
    },
  },
}
