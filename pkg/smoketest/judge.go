package smoketest

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// condition is one entry of status.conditions as the Kubeflow controllers write them.
type condition struct {
	Type, Status, Reason, Message string
}

func conditions(obj *unstructured.Unstructured) []condition {
	raw, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	var out []condition
	for _, r := range raw {
		m, ok := r.(map[string]any)
		if !ok {
			continue
		}
		s := func(k string) string { v, _ := m[k].(string); return v }
		out = append(out, condition{Type: s("type"), Status: s("status"), Reason: s("reason"), Message: s("message")})
	}
	return out
}

func trueCondition(conds []condition, typ string) (condition, bool) {
	for _, c := range conds {
		if c.Type == typ && c.Status == "True" {
			return c, true
		}
	}
	return condition{}, false
}

// conditionState describes the newest conditions for a timeout message.
func conditionState(conds []condition) string {
	if len(conds) == 0 {
		return "no status from the controller yet"
	}
	var parts []string
	for _, c := range conds {
		if c.Status != "True" {
			continue
		}
		p := c.Type
		if c.Message != "" {
			p += " (" + c.Message + ")"
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return "no condition is true yet"
	}
	return "conditions: " + strings.Join(parts, ", ")
}

func describeCondition(c condition) string {
	switch {
	case c.Message != "":
		return c.Message
	case c.Reason != "":
		return c.Reason
	}
	return c.Type
}

// judgeTFJob: Succeeded or Failed conditions of the training operator; the worker's termination
// message says what it saw. Succeeded passes only with the worker's report of the GPU it saw:
// without it nothing shows that the check ran (a pod gone, an image that ignored the command).
func judgeTFJob(obj *unstructured.Unstructured, pods []corev1.Pod) Verdict {
	conds := conditions(obj)
	if _, ok := trueCondition(conds, "Succeeded"); ok {
		msg := terminationMessages(pods, true)
		if !strings.Contains(msg, gpuVisible) {
			reason := "the TFJob succeeded, but its worker reported no GPU (no termination message \"" + gpuVisible + " ...\")"
			if msg != "" {
				reason += "; it said: " + oneLine(msg)
			}
			return Verdict{Done: true, Reason: reason + ": was its pod deleted, or does the image run another command?"}
		}
		return Verdict{Done: true, Pass: true, Reason: msg}
	}
	if c, ok := trueCondition(conds, "Failed"); ok {
		return Verdict{Done: true, Reason: joinReasons(describeCondition(c), terminationMessages(pods, false))}
	}
	return Verdict{Reason: conditionState(conds)}
}

// judgeWorkflow: Argo's phase; on success the parameter that step write passed on is quoted.
func judgeWorkflow(obj *unstructured.Unstructured, pods []corev1.Pod) Verdict {
	phase, _, _ := unstructured.NestedString(obj.Object, "status", "phase")
	message, _, _ := unstructured.NestedString(obj.Object, "status", "message")
	nodes, _, _ := unstructured.NestedMap(obj.Object, "status", "nodes")
	switch phase {
	case "Succeeded":
		reason := "both steps succeeded"
		for _, n := range nodes {
			m, _ := n.(map[string]any)
			if name, _ := m["displayName"].(string); name != "write" {
				continue
			}
			params, _, _ := unstructured.NestedSlice(m, "outputs", "parameters")
			for _, p := range params {
				pm, _ := p.(map[string]any)
				if pm["name"] == "token" {
					reason = fmt.Sprintf("step write's output parameter token=%v reached step check", pm["value"])
				}
			}
		}
		return Verdict{Done: true, Pass: true, Reason: reason}
	case "Failed", "Error":
		var failed []string
		for _, n := range nodes {
			m, _ := n.(map[string]any)
			typ, _ := m["type"].(string)
			p, _ := m["phase"].(string)
			if typ != "Pod" || (p != "Failed" && p != "Error") {
				continue
			}
			name, _ := m["displayName"].(string)
			msg, _ := m["message"].(string)
			failed = append(failed, fmt.Sprintf("step %s: %s", name, msg))
		}
		sort.Strings(failed)
		if message == "" {
			message = "workflow " + strings.ToLower(phase)
		}
		return Verdict{Done: true, Reason: joinReasons(append([]string{message}, append(failed, terminationMessages(pods, false))...)...)}
	case "":
		return Verdict{Reason: "no status from the workflow controller yet"}
	}
	state := "phase " + phase
	if message != "" {
		state += " (" + message + ")"
	}
	return Verdict{Reason: state}
}

// judgeExperiment: Katib's conditions; passing needs every trial to have succeeded and the
// objective metric to have been collected.
func judgeExperiment(obj *unstructured.Unstructured, pods []corev1.Pod) Verdict {
	conds := conditions(obj)
	counts := trialCounts(obj)
	if _, ok := trueCondition(conds, "Succeeded"); ok {
		succeeded, _, _ := unstructured.NestedInt64(obj.Object, "status", "trialsSucceeded")
		if succeeded < experimentTrials {
			return Verdict{Done: true, Reason: joinReasons(fmt.Sprintf("the experiment ended with %d of %d trials succeeded (%s)", succeeded, experimentTrials, counts), terminationMessages(pods, false))}
		}
		best, ok := optimalMetric(obj, "accuracy")
		if !ok {
			return Verdict{Done: true, Reason: fmt.Sprintf("%d trials succeeded but no accuracy metric was collected: Katib's metrics collector did not report", succeeded)}
		}
		return Verdict{Done: true, Pass: true, Reason: fmt.Sprintf("%d trials succeeded; best accuracy=%s", succeeded, best)}
	}
	if c, ok := trueCondition(conds, "Failed"); ok {
		return Verdict{Done: true, Reason: joinReasons(describeCondition(c), counts, terminationMessages(pods, false))}
	}
	return Verdict{Reason: joinReasons(conditionState(conds), counts)}
}

func trialCounts(obj *unstructured.Unstructured) string {
	var parts []string
	for _, k := range []string{"trialsSucceeded", "trialsRunning", "trialsPending", "trialsFailed", "trialMetricsUnavailable", "trialsKilled", "trialsEarlyStopped"} {
		if n, ok, _ := unstructured.NestedInt64(obj.Object, "status", k); ok && n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", strings.TrimPrefix(strings.TrimPrefix(k, "trials"), "trial"), n))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "trials: " + strings.Join(parts, ", ")
}

// optimalMetric is the latest value of the metric in the experiment's best trial.
func optimalMetric(obj *unstructured.Unstructured, metric string) (string, bool) {
	metrics, _, _ := unstructured.NestedSlice(obj.Object, "status", "currentOptimalTrial", "observation", "metrics")
	for _, m := range metrics {
		mm, _ := m.(map[string]any)
		if mm["name"] != metric {
			continue
		}
		if v, _ := mm["latest"].(string); v != "" && v != "unavailable" {
			return v, true
		}
	}
	return "", false
}

// terminationMessages quotes what the containers of the pods said when they ended: of those
// that succeeded (ok) or of those that failed.
func terminationMessages(pods []corev1.Pod, ok bool) string {
	var out []string
	for _, p := range sortedPods(pods) {
		for _, cs := range p.Status.ContainerStatuses {
			t := cs.State.Terminated
			if t == nil || (t.ExitCode == 0) != ok {
				continue
			}
			msg := strings.TrimSpace(t.Message)
			if ok {
				if msg != "" {
					out = append(out, msg)
				}
				continue
			}
			s := fmt.Sprintf("pod %s: container %s exited %d", p.Name, cs.Name, t.ExitCode)
			if t.Reason != "" && t.Reason != "Error" {
				s += " (" + t.Reason + ")"
			}
			if msg != "" {
				s += ": " + oneLine(msg)
			}
			out = append(out, s)
		}
	}
	return strings.Join(out, "; ")
}

func joinReasons(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, "; ")
}

// oneLine keeps a container's message to one line of the report.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func sortedPods(pods []corev1.Pod) []corev1.Pod {
	out := append([]corev1.Pod(nil), pods...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// problem is a pod that is not getting anywhere: unschedulable, or unable to start a container.
type problem struct {
	key, text string
}

// badWaiting are the container waiting reasons that do not go away by themselves.
var badWaiting = map[string]bool{
	"ErrImagePull": true, "ImagePullBackOff": true, "InvalidImageName": true,
	"CreateContainerConfigError": true, "CreateContainerError": true, "CrashLoopBackOff": true,
	"RunContainerError": true,
}

// podProblems lists the stuck pods, with the scheduler's or the kubelet's words.
func podProblems(pods []corev1.Pod) []problem {
	var out []problem
	for _, p := range sortedPods(pods) {
		if p.Status.Phase == corev1.PodPending {
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
					msg := c.Message
					if msg == "" {
						msg = c.Reason
					}
					out = append(out, problem{key: p.Name + "/unschedulable", text: fmt.Sprintf("pod %s is Pending: %s", p.Name, msg)})
				}
			}
		}
		for _, cs := range append(append([]corev1.ContainerStatus(nil), p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
			if w := cs.State.Waiting; w != nil && badWaiting[w.Reason] {
				text := fmt.Sprintf("pod %s: container %s cannot start: %s", p.Name, cs.Name, w.Reason)
				if w.Message != "" {
					text += ": " + oneLine(w.Message)
				}
				out = append(out, problem{key: p.Name + "/" + cs.Name + "/" + w.Reason, text: text})
			}
		}
	}
	return out
}

// podState summarises the pods for a timeout message.
func podState(pods []corev1.Pod) string {
	if len(pods) == 0 {
		return "no pods"
	}
	var parts []string
	for _, p := range sortedPods(pods) {
		parts = append(parts, fmt.Sprintf("pod %s %s", p.Name, p.Status.Phase))
	}
	return strings.Join(parts, ", ")
}
