package smoketest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
)

// cleanupTimeout bounds the deletion of one workload, which runs even after Ctrl-C.
const cleanupTimeout = 30 * time.Second

// create creates the workload's object; created says whether it may exist (so needs deleting).
func create(ctx context.Context, c Clients, ns string, w Workload) (created bool, err error) {
	_, err = c.Dynamic.Resource(w.Resource).Namespace(ns).Create(ctx, w.Object, metav1.CreateOptions{FieldManager: "kfdeploy-test"})
	switch {
	case err == nil:
		return true, nil
	case apierrors.IsNotFound(err) && isNamespaceNotFound(err, ns):
		return false, fmt.Errorf("namespace %s does not exist: deploy the app with 'kfdeploy apply'", ns)
	case apierrors.IsNotFound(err):
		return false, fmt.Errorf("the cluster does not serve %s (%s): deploy the app's %s component with 'kfdeploy apply'", w.Kind, w.Resource.GroupVersion(), w.Component)
	case apierrors.IsInvalid(err) || apierrors.IsBadRequest(err):
		return false, fmt.Errorf("%s rejected: %w", w.Kind, err)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		// The request may have reached the server.
		return true, fmt.Errorf("create %s %s/%s: %w", w.Kind, ns, w.Object.GetName(), err)
	}
	return false, fmt.Errorf("create %s %s/%s: %w", w.Kind, ns, w.Object.GetName(), err)
}

func isNamespaceNotFound(err error, ns string) bool {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return false
	}
	d := status.Status().Details
	return d != nil && d.Kind == "namespaces" && d.Name == ns
}

// waitFor polls the workload until its judge says it is done, a pod has been stuck longer than
// PendingTimeout, or runCtx ends. It returns whether it passed and the reason.
func waitFor(runCtx, parent context.Context, c Clients, opts Options, w Workload) (bool, string) {
	name := w.Object.GetName()
	id := fmt.Sprintf("%s %s/%s", w.Kind, opts.Namespace, name)
	selector := labels.SelectorFromSet(map[string]string{LabelRun: opts.RunID, LabelWorkload: w.Name}).String()
	stuckSince := map[string]time.Time{}
	state := "nothing read yet"
	var pods []corev1.Pod
	var passed bool
	var reason string
	err := wait.PollUntilContextCancel(runCtx, opts.PollInterval, true, func(ctx context.Context) (bool, error) {
		obj, err := c.Dynamic.Resource(w.Resource).Namespace(opts.Namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			reason = id + " was deleted before it finished"
			return true, nil
		}
		if err != nil {
			// Transient (the API server restarting): try again until the timeout.
			state = "read " + id + ": " + err.Error()
			return false, nil
		}
		list, err := c.Typed.CoreV1().Pods(opts.Namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			state = "list pods of " + id + ": " + err.Error()
			return false, nil
		}
		pods = list.Items
		v := w.Judge(obj, pods)
		if v.Done {
			passed, reason = v.Pass, v.Reason
			if !passed && reason == "" {
				reason = id + " failed"
			}
			return true, nil
		}
		state = v.Reason
		now := time.Now()
		seen := map[string]bool{}
		for _, p := range podProblems(pods) {
			seen[p.key] = true
			since, ok := stuckSince[p.key]
			if !ok {
				stuckSince[p.key], since = now, now
			}
			if now.Sub(since) >= opts.PendingTimeout {
				reason = p.text
				return true, nil
			}
			state = joinReasons(state, p.text)
		}
		for k := range stuckSince {
			if !seen[k] {
				delete(stuckSince, k)
			}
		}
		return false, nil
	})
	if err == nil {
		return passed, reason
	}
	if parent.Err() != nil {
		return false, fmt.Sprintf("interrupted while waiting for %s to finish (%s)", id, state)
	}
	hint := podState(pods)
	if len(pods) == 0 {
		hint = fmt.Sprintf("no pods were created: is the %s controller running? (kfdeploy status)", w.Component)
	}
	return false, fmt.Sprintf("timed out after %s waiting for %s to finish: %s; %s", opts.Timeout, id, state, hint)
}

// cleanup deletes the workload (its pods and the objects its controller made go with it, by
// owner references) unless the run keeps it. It runs on a context of its own, so that Ctrl-C
// does not stop it.
func cleanup(parent context.Context, c Clients, opts Options, w Workload) string {
	if opts.Keep {
		return "kept"
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), cleanupTimeout)
	defer cancel()
	if err := deleteObject(ctx, c, opts.Namespace, w, w.Object.GetName()); err != nil {
		return err.Error()
	}
	return "deleted"
}

func deleteObject(ctx context.Context, c Clients, ns string, w Workload, name string) error {
	policy := metav1.DeletePropagationBackground
	err := c.Dynamic.Resource(w.Resource).Namespace(ns).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &policy})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete %s %s/%s: %w (delete it with kubectl, or let the next 'kfdeploy test' remove it)", w.Kind, ns, name, err)
	}
	return nil
}

// removeLeftovers deletes the workloads of earlier runs of this app: kept ones, and those of a
// run that could not clean up. Kinds the cluster does not serve are passed over.
func removeLeftovers(ctx context.Context, c Clients, opts Options, workloads []Workload) ([]string, error) {
	selector := labels.SelectorFromSet(map[string]string{LabelTest: "true", LabelApp: opts.App}).String()
	var removed []string
	var errs []error
	for _, w := range workloads {
		if w.SkipReason != "" {
			continue
		}
		list, err := c.Dynamic.Resource(w.Resource).Namespace(opts.Namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			if !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("list earlier test %ss in %s: %w", w.Kind, opts.Namespace, err))
			}
			continue
		}
		for _, o := range list.Items {
			if o.GetLabels()[LabelRun] == opts.RunID || o.GetDeletionTimestamp() != nil {
				continue
			}
			if err := deleteObject(ctx, c, opts.Namespace, w, o.GetName()); err != nil {
				errs = append(errs, err)
				continue
			}
			removed = append(removed, fmt.Sprintf("%s %s/%s", w.Kind, opts.Namespace, o.GetName()))
		}
	}
	sort.Strings(removed)
	return removed, errors.Join(errs...)
}
