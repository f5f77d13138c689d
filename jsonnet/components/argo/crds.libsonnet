// Argo Workflows CRDs (argoproj.io/v1alpha1), with schemas written for kfdeploy: they validate
// the fields users write (template names, entrypoints, enums, non-negative counts, cron
// schedules) and keep the rest of Argo's large API (container specs, artifacts...) as given.
// Workflow and CronWorkflow have no status subresource: Argo's controller writes their status
// with ordinary updates, which a status subresource would silently drop.
local k = import 'kfdeploy/k.libsonnet';
local s = k.schema;

local nonNegative(description=null) = s.integer(description, minimum=0);
local name = s.string('A DNS-1123-like name.', pattern='^[a-zA-Z0-9][-a-zA-Z0-9]*$', maxLength=128);

// value, default and enum are left unvalidated: Argo takes strings, numbers and booleans there.
local parameter = s.object({
  name: s.string(minLength=1),
  description: s.string(),
}, required=['name'], preserve=true);

local arguments = s.object({
  parameters: s.array(parameter),
  artifacts: s.array(s.object({ name: s.string(minLength=1) }, required=['name'], preserve=true)),
});

local retryStrategy = s.object({
  limit: s.intOrString('Maximum number of retries.'),
  retryPolicy: s.string(enum=['Always', 'OnFailure', 'OnError', 'OnTransientError']),
}, preserve=true);

local templateRef = s.object({
  name: s.string(minLength=1),
  template: s.string(minLength=1),
  clusterScope: s.boolean(),
}, required=['name', 'template']);

// A step (in steps) or a task (in a DAG): what to run and with which arguments.
local invocation = s.object({
  name: s.string(minLength=1),
  template: s.string(),
  templateRef: templateRef,
  arguments: arguments,
  when: s.string(),
  dependencies: s.array(s.string()),
  depends: s.string(),
}, required=['name'], preserve=true);

local template = s.object({
  name: name,
  // No required image: spec.templateDefaults may provide it.
  container: s.object({ image: s.string(minLength=1) }, preserve=true),
  script: s.object({ image: s.string(minLength=1), source: s.string() }, required=['source'], preserve=true),
  steps: s.array(s.array(invocation), 'Groups of steps: the groups run in sequence, the steps of a group in parallel.'),
  dag: s.object({ target: s.string(), tasks: s.array(invocation, minItems=1), failFast: s.boolean() }, required=['tasks']),
  resource: s.object({
    action: s.string(enum=['get', 'create', 'apply', 'delete', 'replace', 'patch']),
    manifest: s.string(),
  }, required=['action'], preserve=true),
  suspend: s.object({ duration: s.intOrString('Seconds, or a duration such as "5m".') }),
  inputs: s.object({ parameters: s.array(parameter) }, preserve=true),
  outputs: s.preserve(),
  retryStrategy: retryStrategy,
  activeDeadlineSeconds: s.intOrString(),
  parallelism: nonNegative(),
  serviceAccountName: s.string(),
}, required=['name'], preserve=true);

local workflowSpec(requireTemplates) = s.object({
  entrypoint: s.string('Template to start with.', minLength=1),
  templates: s.array(template, minItems=1),
  arguments: arguments,
  serviceAccountName: s.string(),
  workflowTemplateRef: s.object({ name: s.string(minLength=1), clusterScope: s.boolean() }, required=['name']),
  parallelism: nonNegative('Maximum number of pods running at once.'),
  activeDeadlineSeconds: s.integer(minimum=0, format='int64'),
  suspend: s.boolean(),
  priority: s.integer(),
  ttlStrategy: s.object({
    secondsAfterCompletion: nonNegative(),
    secondsAfterSuccess: nonNegative(),
    secondsAfterFailure: nonNegative(),
  }),
  podGC: s.object({
    strategy: s.string(enum=['', 'OnPodCompletion', 'OnPodSuccess', 'OnWorkflowCompletion', 'OnWorkflowSuccess']),
  }, preserve=true),
  retryStrategy: retryStrategy,
}, preserve=true, required=if requireTemplates then ['templates'] else []) + (
  // A Workflow either brings its templates or refers to a WorkflowTemplate.
  if requireTemplates then {} else { anyOf: [{ required: ['templates'] }, { required: ['workflowTemplateRef'] }] }
);

local workflowColumns = [
  k.column('Status', '.status.phase', description='Status of the workflow'),
  k.column('Age', '.status.startedAt', 'date', description='When the workflow was started'),
  k.column('Message', '.status.message', description='Why the workflow is in this state'),
];

local templateSpec = workflowSpec(true);

local v1alpha1(schema, columns=[], status=false) = [k.crdVersion('v1alpha1', schema, columns, status=status)];
local crd(kind, plural, schema, shortNames=[], scope='Namespaced', columns=[], status=false, labels={}) =
  k.crd('argoproj.io', kind, plural, v1alpha1(schema, columns, status), scope, shortNames, ['argo'], labels);

function(labels) [
  crd('Workflow', 'workflows', s.root(workflowSpec(false)), ['wf'], columns=workflowColumns, labels=labels),
  crd('WorkflowTemplate', 'workflowtemplates', s.root(templateSpec, status=null), ['wftmpl'], columns=[k.ageColumn], labels=labels),
  crd('ClusterWorkflowTemplate', 'clusterworkflowtemplates', s.root(templateSpec, status=null), ['clusterwftmpl', 'cwft'], 'Cluster', [k.ageColumn], labels=labels),
  crd('CronWorkflow', 'cronworkflows', s.root(s.object({
    schedule: s.string('Cron schedule, e.g. "0 * * * *".', minLength=1),
    timezone: s.string(),
    concurrencyPolicy: s.string(enum=['Allow', 'Forbid', 'Replace']),
    suspend: s.boolean(),
    startingDeadlineSeconds: s.integer(minimum=0, format='int64'),
    successfulJobsHistoryLimit: nonNegative(),
    failedJobsHistoryLimit: nonNegative(),
    workflowMetadata: s.preserve(),
    workflowSpec: workflowSpec(false),
  }, required=['schedule', 'workflowSpec'], preserve=true)), ['cwf', 'cronwf'], columns=[
    k.column('Schedule', '.spec.schedule'),
    k.column('Suspended', '.spec.suspend', 'boolean'),
    k.ageColumn,
  ], labels=labels),
  crd('WorkflowEventBinding', 'workfloweventbindings', s.root(s.object({
    event: s.object({ selector: s.string(minLength=1) }, required=['selector']),
    submit: s.object({ workflowTemplateRef: s.object({ name: s.string(minLength=1), clusterScope: s.boolean() }, required=['name']) }, required=['workflowTemplateRef'], preserve=true),
  }, required=['event']), status=null), ['wfeb'], labels=labels),
  // Internal to Argo (written by the controller and the workflow pods), kept open.
  crd('WorkflowTaskSet', 'workflowtasksets', s.root(s.preserve()), ['wfts'], status=true, labels=labels),
  crd('WorkflowArtifactGCTask', 'workflowartifactgctasks', s.root(s.preserve()), ['wfat'], status=true, labels=labels),
  // A task result has no spec: its fields sit at the top level.
  crd('WorkflowTaskResult', 'workflowtaskresults', s.object({
    apiVersion: s.string(),
    kind: s.string(),
    metadata: { type: 'object' },
    message: s.string(),
    phase: s.string(),
    progress: s.string(),
    outputs: s.preserve(),
  }, required=['metadata']), labels=labels),
]
