// TFJob and PyTorchJob CRDs (kubeflow.org/v1) with schemas written for kfdeploy. They validate the
// replica types (map keys, checked by CEL rules so that a misspelled type is rejected rather
// than silently dropped), replica counts, restart and clean-pod policies, and that every replica
// has a pod template with named containers; the pod spec itself is left to the API server, which
// validates it when the operator creates the pods.
local k = import 'kfdeploy/k.libsonnet';
local s = k.schema;

local replicaSpec = s.object({
  replicas: s.integer('Number of pods of this type.', minimum=0),
  restartPolicy: s.string(enum=['Always', 'OnFailure', 'Never', 'ExitCode']),
  template: s.podTemplate('Pod template of the replicas.'),
}, required=['template']);

// A map from replica type to replica spec: only `types`, at most one pod for each of `single`.
local replicaSpecs(types, single, description) = s.map(replicaSpec, description, minProperties=1, maxProperties=std.length(types)) + {
  'x-kubernetes-validations': [
    {
      rule: 'self.all(t, t in %s)' % std.manifestJsonMinified(types),
      message: 'replica types must be among ' + std.join(', ', types),
    },
  ] + [
    {
      rule: "!('%s' in self) || !has(self.%s.replicas) || self.%s.replicas <= 1" % [t, t, t],
      message: 'there can be at most one %s replica' % t,
    }
    for t in single
  ],
};

local runPolicy = s.object({
  cleanPodPolicy: s.string('Which pods to delete when the job finishes.', enum=['All', 'Running', 'None']),
  ttlSecondsAfterFinished: s.integer(minimum=0),
  activeDeadlineSeconds: s.integer(minimum=0, format='int64'),
  backoffLimit: s.integer(minimum=0),
  suspend: s.boolean(),
  schedulingPolicy: s.object({
    minAvailable: s.integer(minimum=0),
    queue: s.string(),
    priorityClass: s.string(),
    minResources: s.map(s.intOrString()),
    scheduleTimeoutSeconds: s.integer(minimum=0),
  }, preserve=true),
}, preserve=true);

local columns = [k.stateColumn, k.ageColumn];
local v1(spec) = [k.crdVersion('v1', s.root(spec), columns)];

function(labels) [
  k.crd('kubeflow.org', 'TFJob', 'tfjobs', v1(s.object({
    tfReplicaSpecs: replicaSpecs(['Chief', 'PS', 'Worker', 'Evaluator'], ['Chief'], 'TensorFlow replicas by type.'),
    runPolicy: runPolicy,
    successPolicy: s.string(enum=['', 'AllWorkers']),
    enableDynamicWorker: s.boolean(),
  }, required=['tfReplicaSpecs'], preserve=true)), categories=['kubeflow', 'training'], labels=labels),
  k.crd('kubeflow.org', 'PyTorchJob', 'pytorchjobs', v1(s.object({
    pytorchReplicaSpecs: replicaSpecs(['Master', 'Worker'], ['Master'], 'PyTorch replicas by type.'),
    runPolicy: runPolicy,
    elasticPolicy: s.object({
      minReplicas: s.integer(minimum=1),
      maxReplicas: s.integer(minimum=1),
      maxRestarts: s.integer(minimum=0),
      rdzvBackend: s.string(enum=['c10d', 'etcd', 'etcd-v2']),
      nProcPerNode: s.integer(minimum=1),
    }, preserve=true),
    nprocPerNode: s.string(),
  }, required=['pytorchReplicaSpecs'], preserve=true)), categories=['kubeflow', 'training'], labels=labels),
]
