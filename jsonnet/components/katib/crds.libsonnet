// Katib CRDs (kubeflow.org/v1beta1) with schemas written for kfdeploy. They validate what users
// write in an Experiment (objective type, algorithm names of the configured suggestion services,
// parameter types, trial counts, metrics collector kinds) and default what Katib's defaulting
// webhook would, so that an Experiment stays usable even when the webhook is unreachable.
// Fields Katib adds in later releases are kept (preserve-unknown) below spec, never at the top.
local k = import 'kfdeploy/k.libsonnet';
local s = k.schema;

function(algorithms, labels)
  local algorithm = s.object({
    algorithmName: s.string('One of the suggestion algorithms configured in katib-config.', enum=algorithms),
    algorithmSettings: s.array(s.object({ name: s.string(minLength=1), value: s.string() }, required=['name'])),
  }, required=['algorithmName']);
  local earlyStopping = s.object({
    algorithmName: s.string(enum=['medianstop']),
    algorithmSettings: s.array(s.object({ name: s.string(minLength=1), value: s.string() }, required=['name'])),
  }, required=['algorithmName']);
  local objective = s.object({
    type: s.string('Whether the objective metric is maximized or minimized.', enum=['maximize', 'minimize']),
    goal: s.number('Stop once the objective metric reaches this value.'),
    objectiveMetricName: s.string(minLength=1),
    additionalMetricNames: s.array(s.string(minLength=1)),
    metricStrategies: s.array(s.object({
      name: s.string(minLength=1),
      value: s.string(enum=['min', 'max', 'latest']),
    }, required=['name', 'value'])),
  }, required=['type', 'objectiveMetricName']);
  local metricsCollector = s.object({
    collector: s.object({
      kind: s.string(enum=['StdOut', 'File', 'TensorFlowEvent', 'PrometheusMetric', 'Custom', 'None']),
      customCollector: s.preserve(),
    }, required=['kind']),
    source: s.preserve(),
  });
  local resumePolicy = s.string(enum=['Never', 'LongRunning', 'FromVolume']);
  local parameter = s.object({
    name: s.string(minLength=1),
    parameterType: s.string(enum=['int', 'double', 'categorical', 'discrete']),
    feasibleSpace: s.object({
      min: s.string(),
      max: s.string(),
      step: s.string(),
      list: s.array(s.string(), minItems=1),
    }, preserve=true),
  }, required=['name', 'parameterType', 'feasibleSpace']);
  local trialTemplate = s.object({
    retain: s.boolean(),
    primaryContainerName: s.string(),
    primaryPodLabels: s.map(s.string()),
    successCondition: s.string(),
    failureCondition: s.string(),
    trialParameters: s.array(s.object({
      name: s.string(minLength=1),
      reference: s.string(minLength=1),
      description: s.string(),
    }, required=['name', 'reference'])),
    trialSpec: s.embedded('The Job (batch/v1 Job, TFJob, PyTorchJob...) each trial runs.'),
    configMap: s.object({ configMapName: s.string(), configMapNamespace: s.string(), templatePath: s.string() }),
  }) + { anyOf: [{ required: ['trialSpec'] }, { required: ['configMap'] }] };

  local experimentSpec = s.object({
    objective: objective,
    algorithm: algorithm,
    earlyStopping: earlyStopping,
    parameters: s.array(parameter),
    nasConfig: s.preserve(),
    trialTemplate: trialTemplate,
    parallelTrialCount: s.integer('Trials run at once.', minimum=1) + { default: 3 },
    maxTrialCount: s.integer(minimum=1),
    maxFailedTrialCount: s.integer(minimum=0),
    metricsCollectorSpec: metricsCollector { default: { collector: { kind: 'StdOut' } } },
    resumePolicy: resumePolicy { default: 'Never' },
  }, required=['objective', 'algorithm', 'trialTemplate'], preserve=true) + {
    // Hyperparameters to tune, or a neural architecture search.
    anyOf: [{ required: ['parameters'] }, { required: ['nasConfig'] }],
  };

  local conditionColumns = [
    k.column('Type', '.status.conditions[-1:].type'),
    k.column('Status', '.status.conditions[-1:].status'),
  ];
  local v1beta1(schema, columns) = [k.crdVersion('v1beta1', schema, columns + [k.ageColumn])];
  [
    k.crd('kubeflow.org', 'Experiment', 'experiments', v1beta1(s.root(experimentSpec), conditionColumns), categories=['kubeflow', 'katib'], labels=labels),
    k.crd('kubeflow.org', 'Suggestion', 'suggestions', v1beta1(s.root(s.object({
      algorithm: algorithm,
      earlyStopping: earlyStopping,
      requests: s.integer('Number of suggestions requested.', minimum=0),
      resumePolicy: resumePolicy,
    }, required=['algorithm'], preserve=true)), conditionColumns + [
      k.column('Requested', '.spec.requests', 'integer'),
      k.column('Assigned', '.status.suggestionCount', 'integer'),
    ]), categories=['kubeflow', 'katib'], labels=labels),
    k.crd('kubeflow.org', 'Trial', 'trials', v1beta1(s.root(s.object({
      objective: objective,
      parameterAssignments: s.array(s.object({ name: s.string(minLength=1), value: s.string() }, required=['name', 'value'])),
      runSpec: s.embedded('The Job this trial runs.'),
      metricsCollector: metricsCollector,
      primaryContainerName: s.string(),
      primaryPodLabels: s.map(s.string()),
      successCondition: s.string(),
      failureCondition: s.string(),
      retainRun: s.boolean(),
      labels: s.map(s.string()),
    }, required=['runSpec'], preserve=true)), conditionColumns), categories=['kubeflow', 'katib'], labels=labels),
  ]
