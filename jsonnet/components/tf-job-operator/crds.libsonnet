// TFJob and PyTorchJob CRDs (kubeflow.org/v1) with schemas written for kfdeploy, held against the
// Training Operator v1.9.4: they accept every job the operator runs and reject, with the reason,
// the jobs its validating webhook refuses or that it would never run. Sources, all at v1.9.4 of
// github.com/kubeflow/training-operator:
//   - replica types: pkg/apis/kubeflow.org/v1/tensorflow_types.go (Chief, Master, PS, Worker,
//     Evaluator) and pytorch_types.go (Master, Worker);
//   - letter case: the TFJob controller defaults every key that equals a type ignoring case to
//     that type (defaulting_utils.go setTypeNameToCamelCase, called from SetDefaults_TFJob), and
//     its webhook checks no type names; the PyTorchJob webhook accepts exactly "Master" and
//     "Worker" (pkg/webhooks/pytorch/pytorchjob_webhook.go; it decodes without defaulting);
//   - containers: both webhooks require a container named tensorflow / pytorch in every replica,
//     and an image in every container; the PyTorchJob webhook requires Master replicas: 1 and
//     Worker replicas >= 1, and a Worker when elasticPolicy is set;
//   - the scale subresource of PyTorchJob (pytorch_types.go kubebuilder marker).
// The pod spec itself is left to the API server, which validates it when the operator creates
// the pods. CEL rules (x-kubernetes-validations) use only standard CEL, and every map they walk
// has maxProperties, so that the API server's cost estimate stays within its budget.
local k = import 'kfdeploy/k.libsonnet';
local s = k.schema;

// A replica spec whose pods must have a container named `container`: the operator sets the
// job's ports and environment (TF_CONFIG, MASTER_ADDR...) on that container only, and its
// webhook rejects a replica without it.
local replicaSpec(container, kind) = s.object({
  replicas: s.integer('Number of pods of this type.', minimum=0),
  restartPolicy: s.string(enum=['Always', 'OnFailure', 'Never', 'ExitCode']),
  template: s.podTemplate('Pod template of the replicas.') + {
    properties+: { spec+: { properties+: { containers+: {
      'x-kubernetes-validations': [{
        rule: "self.exists(c, c.name == '%s')" % container,
        message: 'must have at least one container named %s: the %s operator configures and watches only that container' % [container, kind],
      }],
    } } } },
  },
}, required=['template']);

local typeList(types) = std.join(', ', types[:std.length(types) - 1]) + ' or ' + types[std.length(types) - 1];

// TFJob replica types: any letter case, as the operator normalises keys; no two keys that name
// the same type, and at most one of Chief and Master (semantically the same role).
local tfReplicaSpecs =
  local types = ['Chief', 'Master', 'PS', 'Worker', 'Evaluator'];
  local ci(names) = "'^(?i)(%s)$'" % std.join('|', names);
  s.map(replicaSpec('tensorflow', 'TFJob'), 'TensorFlow replicas by type (Chief, Master, PS, Worker, Evaluator; any letter case).', minProperties=1, maxProperties=std.length(types)) + {
    'x-kubernetes-validations': [
      {
        rule: 'self.all(t, t.matches(%s))' % ci(types),
        message: 'replica types must be %s (any letter case)' % typeList(types),
      },
    ] + [
      {
        rule: 'self.filter(t, t.matches(%s)).size() <= 1' % ci([t]),
        message: 'replica type %s is given more than once (keys differing only in letter case name the same type)' % t,
      }
      for t in types
    ] + [
      {
        rule: 'self.filter(t, t.matches(%s)).size() <= 1' % ci(['Chief', 'Master']),
        message: 'a TFJob has at most one of Chief and Master',
      },
    ],
  };

// PyTorchJob replica types exactly as the operator's webhook spells them.
local pytorchReplicaSpecs =
  local types = ['Master', 'Worker'];
  s.map(replicaSpec('pytorch', 'PyTorchJob'), 'PyTorch replicas by type (Master, Worker).', minProperties=1, maxProperties=std.length(types)) + {
    'x-kubernetes-validations': [
      {
        rule: 'self.all(t, t in %s)' % std.manifestJsonMinified(types),
        message: 'replica types must be %s (spelled exactly so)' % typeList(types),
      },
      {
        rule: "!('Master' in self) || (has(self.Master.replicas) && self.Master.replicas == 1)",
        message: 'Master must set replicas: 1',
      },
      {
        rule: "!('Worker' in self) || !has(self.Worker.replicas) || self.Worker.replicas >= 1",
        message: 'Worker replicas must be at least 1',
      },
    ],
  };

local immutable(what) = [{ rule: 'self == oldSelf', message: what + ' is immutable' }];

local runPolicy = s.object({
  cleanPodPolicy: s.string('Which pods to delete when the job finishes.', enum=['All', 'Running', 'None']),
  ttlSecondsAfterFinished: s.integer(minimum=0),
  activeDeadlineSeconds: s.integer(minimum=0, format='int64'),
  backoffLimit: s.integer(minimum=0),
  suspend: s.boolean(),
  managedBy: s.string('The controller that runs the job (pkg/common/util/webhooks.go).', enum=['kubeflow.org/training-operator', 'kueue.x-k8s.io/multikueue']) + {
    'x-kubernetes-validations': immutable('spec.runPolicy.managedBy'),
  },
  schedulingPolicy: s.object({
    minAvailable: s.integer(minimum=0),
    queue: s.string() + { 'x-kubernetes-validations': immutable('spec.runPolicy.schedulingPolicy.queue') },
    priorityClass: s.string(),
    minResources: s.map(s.intOrString()),
    scheduleTimeoutSeconds: s.integer(minimum=0),
  }, preserve=true),
}, preserve=true);

local columns = [k.stateColumn, k.ageColumn];
local v1(spec) = k.crdVersion('v1', s.root(spec), columns);

function(labels) [
  k.crd('kubeflow.org', 'TFJob', 'tfjobs', [v1(s.object({
    tfReplicaSpecs: tfReplicaSpecs,
    runPolicy: runPolicy,
    successPolicy: s.string(enum=['', 'AllWorkers']),
    enableDynamicWorker: s.boolean(),
  }, required=['tfReplicaSpecs'], preserve=true))], categories=['kubeflow', 'training'], labels=labels),
  k.crd('kubeflow.org', 'PyTorchJob', 'pytorchjobs', [v1(s.object({
    pytorchReplicaSpecs: pytorchReplicaSpecs,
    runPolicy: runPolicy,
    elasticPolicy: s.object({
      minReplicas: s.integer(minimum=1),
      maxReplicas: s.integer(minimum=1),
      maxRestarts: s.integer(minimum=0),
      rdzvBackend: s.string(enum=['c10d', 'etcd', 'etcd-v2']),
      nProcPerNode: s.integer(minimum=1),
    }, preserve=true),
    nprocPerNode: s.string(),
  }, required=['pytorchReplicaSpecs'], preserve=true) + {
    'x-kubernetes-validations': [
      {
        rule: "!has(self.elasticPolicy) || 'Worker' in self.pytorchReplicaSpecs",
        message: 'elasticPolicy needs a Worker replica spec',
      },
      {
        rule: '!has(self.elasticPolicy) || !has(self.elasticPolicy.nProcPerNode) || !has(self.nprocPerNode)',
        message: 'elasticPolicy.nProcPerNode (deprecated) must not be used with nprocPerNode',
      },
    ],
  }) + {
    // kubectl scale and the HorizontalPodAutoscaler of an elastic job change the Worker count.
    subresources+: {
      scale: {
        specReplicasPath: '.spec.pytorchReplicaSpecs.Worker.replicas',
        statusReplicasPath: '.status.replicaStatuses.Worker.active',
        labelSelectorPath: '.status.replicaStatuses.Worker.selector',
      },
    },
  }], categories=['kubeflow', 'training'], labels=labels),
]
