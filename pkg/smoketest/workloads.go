package smoketest

import (
	"context"
	"fmt"
	"slices"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kfdeploy/kfdeploy/pkg/images"
)

// The resources the workloads create.
var (
	TFJobs      = schema.GroupVersionResource{Group: "kubeflow.org", Version: "v1", Resource: "tfjobs"}
	Workflows   = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "workflows"}
	Experiments = schema.GroupVersionResource{Group: "kubeflow.org", Version: "v1beta1", Resource: "experiments"}
)

// workloadComponents maps each workload to the component it tests, in report order.
var workloadComponents = map[string]string{"tfjob": "tf-job-operator", "workflow": "argo", "experiment": "katib"}

// Katib's metrics collector is injected, in Katib's own manifests, only into pods of namespaces
// with this label.
const katibInjectionLabel = "katib.kubeflow.org/metrics-collector-injection"

// experimentTrials is how many trials the Katib experiment runs.
const experimentTrials = 3

// Workload is one test: the object to create and how to judge it.
type Workload struct {
	Name      string
	Component string
	Kind      string
	Resource  schema.GroupVersionResource
	// Object is nil when the workload is skipped; SkipReason then says why.
	Object     *unstructured.Unstructured
	SkipReason string
	// Precheck finds, before anything is created, what would make the workload fail for sure.
	Precheck func(ctx context.Context, c Clients, opts Options) error
	// Judge reads the live object and its pods.
	Judge func(obj *unstructured.Unstructured, pods []corev1.Pod) Verdict
}

// Verdict is a Judge's reading: Done with Pass or not, and the reason or the current state.
type Verdict struct {
	Done   bool
	Pass   bool
	Reason string
}

// Workloads builds the run's workloads from the options: one per testable component, skipped
// when the app lacks the component.
func Workloads(opts Options) []Workload {
	runID := opts.RunID
	ws := []Workload{
		{Name: "tfjob", Kind: "TFJob", Resource: TFJobs, Judge: judgeTFJob},
		{Name: "workflow", Kind: "Workflow", Resource: Workflows, Judge: judgeWorkflow},
		{Name: "experiment", Kind: "Experiment", Resource: Experiments, Judge: judgeExperiment, Precheck: katibInjects},
	}
	for i := range ws {
		w := &ws[i]
		w.Component = workloadComponents[w.Name]
		if !slices.Contains(opts.Components, w.Component) {
			w.SkipReason = fmt.Sprintf("the app has no %s component", w.Component)
			continue
		}
		name := "kfdeploy-test-" + w.Name + "-" + runID
		labels := runLabels(opts, w.Name)
		image := opts.ImageOf(w.Name)
		switch w.Name {
		case "tfjob":
			w.Object = tfJob(name, opts, labels, image)
		case "workflow":
			w.Object = workflow(name, opts, labels, image)
		case "experiment":
			if reason := katibLacksRandom(opts.Params["katib"]); reason != "" {
				w.SkipReason = reason
				continue
			}
			w.Object = experiment(name, opts, labels, image)
		}
		w.Object.SetNamespace(opts.Namespace)
		w.Object.SetLabels(labels)
	}
	return ws
}

func runLabels(opts Options, workload string) map[string]string {
	return map[string]string{LabelTest: "true", LabelApp: opts.App, LabelRun: opts.RunID, LabelWorkload: workload}
}

// podTemplateMeta labels the pods a controller creates from a template as the run's.
func podTemplateMeta(labels map[string]string) map[string]any {
	l := map[string]any{}
	for k, v := range labels {
		l[k] = v
	}
	return map[string]any{"labels": l}
}

// container is a small, non-root container that runs script with sh.
func container(name, image, script string, extra map[string]any) map[string]any {
	c := map[string]any{
		"name":    name,
		"image":   image,
		"command": []any{"sh", "-c", script},
		// The script's last words become the termination message, which the report quotes.
		"terminationMessagePolicy": "FallbackToLogsOnError",
		"resources": map[string]any{
			"requests": map[string]any{"cpu": "10m", "memory": "16Mi"},
			"limits":   map[string]any{"memory": "64Mi"},
		},
		"securityContext": map[string]any{
			"allowPrivilegeEscalation": false,
			"runAsNonRoot":             true,
			"runAsUser":                int64(65534),
			"capabilities":             map[string]any{"drop": []any{"ALL"}},
			"seccompProfile":           map[string]any{"type": "RuntimeDefault"},
		},
	}
	for k, v := range extra {
		c[k] = v
	}
	return c
}

// withPullSecrets gives a pod spec (or a Workflow's spec) the run's pull secrets.
func withPullSecrets(opts Options, spec map[string]any) map[string]any {
	images.AddPullSecrets(spec, opts.PullSecrets)
	return spec
}

// gpuDevices is the device-file glob a container sees for a GPU of the resource.
func gpuDevices(resource string) string {
	switch {
	case strings.HasPrefix(resource, "nvidia.com/"):
		return "/dev/nvidia[0-9]*"
	case resource == "amd.com/gpu":
		return "/dev/kfd"
	case strings.HasPrefix(resource, "gpu.intel.com/"):
		return "/dev/dri/renderD*"
	}
	return "/dev/nvidia[0-9]* /dev/dri/renderD*"
}

// gpuVisible starts the worker's report of the GPU it saw (its termination message), which the
// judge requires: a worker that exits 0 without it has not shown a GPU.
const gpuVisible = "GPU visible:"

// gpuCheckScript passes when the container sees a GPU: its device files, and nvidia-smi's list
// when the runtime put nvidia-smi into the container.
func gpuCheckScript(resource string) string {
	return `say() { echo "$1"; echo "$1" > /dev/termination-log 2>/dev/null || true; }
found=""
for f in ` + gpuDevices(resource) + `; do [ -e "$f" ] && found="$found $f"; done
if command -v nvidia-smi >/dev/null 2>&1; then
  if out=$(nvidia-smi -L 2>&1); then found="${found:+$found;} $(echo "$out" | head -n 1)"; else say "nvidia-smi failed: $out"; exit 1; fi
fi
if [ -z "$found" ]; then say "no GPU visible in the container: no device file ` + gpuDevices(resource) + ` and no nvidia-smi"; exit 1; fi
say "` + gpuVisible + `$found"`
}

// tfJob is a TFJob with one worker that requests the GPUs and checks that it sees one.
func tfJob(name string, opts Options, labels map[string]string, image string) *unstructured.Unstructured {
	gpus := fmt.Sprint(opts.GPUs)
	worker := container("tensorflow", image, gpuCheckScript(opts.GPUResource), map[string]any{
		"resources": map[string]any{
			"requests": map[string]any{"cpu": "10m", "memory": "16Mi", opts.GPUResource: gpus},
			"limits":   map[string]any{"memory": "64Mi", opts.GPUResource: gpus},
		},
	})
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "kubeflow.org/v1",
		"kind":       "TFJob",
		"metadata":   map[string]any{"name": name},
		"spec": map[string]any{
			// Pods stay until the TFJob is deleted, so that a failure can be read from them.
			"runPolicy": map[string]any{"cleanPodPolicy": "None", "backoffLimit": int64(0)},
			"tfReplicaSpecs": map[string]any{
				"Worker": map[string]any{
					"replicas":      int64(1),
					"restartPolicy": "Never",
					"template": map[string]any{
						"metadata": podTemplateMeta(labels),
						"spec": withPullSecrets(opts, map[string]any{
							"automountServiceAccountToken": false,
							"containers":                   []any{worker},
						}),
					},
				},
			},
		},
	}}
}

// workflow passes an output parameter from step write to step check, which compares it with the
// value it expects (the run's ID).
func workflow(name string, opts Options, labels map[string]string, image string) *unstructured.Unstructured {
	token := "kfdeploy-" + opts.RunID
	write := container("main", image, `printf %s "`+token+`" > /tmp/token && echo "wrote `+token+`"`, nil)
	check := container("main", image,
		`if [ "$0" = "`+token+`" ]; then echo "got `+token+` from step write"; else echo "expected `+token+` from step write, got '$0'" | tee /dev/termination-log; exit 1; fi`,
		map[string]any{"args": []any{"{{inputs.parameters.token}}"}})
	spec := map[string]any{
		"entrypoint":  "main",
		"podMetadata": podTemplateMeta(labels),
		"templates": []any{
			map[string]any{
				"name": "main",
				"steps": []any{
					[]any{map[string]any{"name": "write", "template": "write"}},
					[]any{map[string]any{"name": "check", "template": "check", "arguments": map[string]any{
						"parameters": []any{map[string]any{"name": "token", "value": "{{steps.write.outputs.parameters.token}}"}},
					}}},
				},
			},
			map[string]any{
				"name":      "write",
				"container": write,
				"outputs": map[string]any{"parameters": []any{
					map[string]any{"name": "token", "valueFrom": map[string]any{"path": "/tmp/token"}},
				}},
			},
			map[string]any{
				"name":      "check",
				"inputs":    map[string]any{"parameters": []any{map[string]any{"name": "token"}}},
				"container": check,
			},
		},
	}
	// The workflow's pull secrets reach every pod of it, the executor's containers included.
	withPullSecrets(opts, spec)
	// Without an explicit account the controller's workflowDefaults name the component's.
	if sa, ok := opts.Params["argo"]["workflowServiceAccount"].(string); ok && sa != "" {
		spec["serviceAccountName"] = sa
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "argoproj.io/v1alpha1",
		"kind":       "Workflow",
		"metadata":   map[string]any{"name": name},
		"spec":       spec,
	}}
}

// experiment is a random search of three trials, each a Job that prints the metric in the
// format of Katib's StdOut collector (name=value).
func experiment(name string, opts Options, labels map[string]string, image string) *unstructured.Unstructured {
	// A plain command, not sh -c: Katib wraps the primary container's command in its own shell
	// line to capture the output, which works for every Katib version only with a plain one.
	trial := container("training-container", image, "", map[string]any{
		"command": []any{"echo", "accuracy=${trialParameters.x}"},
	})
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "kubeflow.org/v1beta1",
		"kind":       "Experiment",
		"metadata":   map[string]any{"name": name},
		"spec": map[string]any{
			"objective":          map[string]any{"type": "maximize", "objectiveMetricName": "accuracy"},
			"algorithm":          map[string]any{"algorithmName": "random"},
			"parallelTrialCount": int64(experimentTrials),
			"maxTrialCount":      int64(experimentTrials),
			// No maxFailedTrialCount: Katib releases compare it differently (> or >=), and a
			// failed trial fails the test anyway, as the judge counts succeeded trials.
			"metricsCollectorSpec": map[string]any{
				"collector": map[string]any{"kind": "StdOut"},
			},
			"parameters": []any{map[string]any{
				"name":          "x",
				"parameterType": "double",
				"feasibleSpace": map[string]any{"min": "0.1", "max": "0.9"},
			}},
			"trialTemplate": map[string]any{
				"primaryContainerName": "training-container",
				"trialParameters":      []any{map[string]any{"name": "x", "reference": "x"}},
				"trialSpec": map[string]any{
					"apiVersion": "batch/v1",
					"kind":       "Job",
					"spec": map[string]any{
						"backoffLimit": int64(0),
						"template": map[string]any{
							"metadata": podTemplateMeta(labels),
							"spec": withPullSecrets(opts, map[string]any{
								"restartPolicy":                "Never",
								"automountServiceAccountToken": false,
								"containers":                   []any{trial},
							}),
						},
					},
				},
			},
		},
	}}
}

// katibLacksRandom says why the experiment cannot run when the app's Katib offers no random
// suggestion service.
func katibLacksRandom(params map[string]any) string {
	s, ok := params["suggestions"].(map[string]any)
	if !ok {
		return ""
	}
	if _, ok := s["random"]; ok {
		return ""
	}
	return "the app's katib component offers no random suggestion service (parameter suggestions); the experiment uses random search"
}

// katibInjects fails early when Katib's pod webhook, which injects the metrics collector into
// trial pods, would not see the namespace's pods: no metric would ever be reported. Katib
// releases differ in how the webhook picks pods (a namespace label, or the pods' owners), so
// the live webhook's namespaceSelector is what counts. When the webhooks cannot be read, the
// run goes ahead and the experiment's own status tells.
func katibInjects(ctx context.Context, c Clients, opts Options) error {
	configs, err := c.Typed.AdmissionregistrationV1().MutatingWebhookConfigurations().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil
	}
	ns, err := c.Typed.CoreV1().Namespaces().Get(ctx, opts.Namespace, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("read namespace %s: %w", opts.Namespace, err)
	}
	for _, cfg := range configs.Items {
		for _, wh := range cfg.Webhooks {
			svc := wh.ClientConfig.Service
			if svc == nil || svc.Namespace != opts.Namespace || !strings.HasPrefix(svc.Name, "katib") || !mutatesPods(wh.Rules) || wh.NamespaceSelector == nil {
				continue
			}
			sel, err := metav1.LabelSelectorAsSelector(wh.NamespaceSelector)
			if err != nil || sel.Matches(labels.Set(ns.Labels)) {
				continue
			}
			return fmt.Errorf("pod webhook %s of Katib selects namespaces by %s, which namespace %s does not match, so no metric of a trial would be collected: label the namespace (the core component's namespaceLabels parameter, e.g. %s: enabled) and apply", wh.Name, sel, opts.Namespace, katibInjectionLabel)
		}
	}
	return nil
}

func mutatesPods(rules []admissionregistrationv1.RuleWithOperations) bool {
	for _, r := range rules {
		if slices.Contains(r.Resources, "pods") || slices.Contains(r.Resources, "*") {
			return true
		}
	}
	return false
}
