package kube

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"

	"github.com/kfdeploy/kfdeploy/pkg/manifest"
)

// pollInterval paces readiness and deletion polling: one list per kind and namespace a round.
const pollInterval = time.Second

// group is the objects of one resource in one namespace, read together with one list call.
type groupKey struct {
	resource  schema.GroupVersionResource
	namespace string
}

// waitReady waits until kstatus (sigs.k8s.io/cli-utils) computes Current for every object:
// Deployments available, StatefulSets rolled out, PVCs Bound, CRDs Established, custom
// resources Ready. On timeout it names each object that is not ready and why.
func (c *Client) waitReady(ctx context.Context, s ApplySet, objs []planned, timeout time.Duration, rep Reporter) error {
	pending := map[groupKey]map[string]manifest.ID{}
	total := 0
	for _, p := range objs {
		k := groupKey{resource: p.mapping.Resource, namespace: p.obj.GetNamespace()}
		if pending[k] == nil {
			pending[k] = map[string]manifest.ID{}
		}
		pending[k][p.obj.GetName()] = p.id
		total++
	}
	last := map[manifest.ID]*status.Result{}
	err := wait.PollUntilContextTimeout(ctx, pollInterval, timeout, true, func(context.Context) (bool, error) {
		// The lists run under the caller's context, not the poll's: a round that has started
		// finishes, and the timeout is judged between rounds.
		if err := c.pollReady(ctx, s, pending, last); err != nil {
			return false, err
		}
		var waiting []string
		for _, names := range pending {
			for _, id := range names {
				waiting = append(waiting, id.String())
			}
		}
		sort.Strings(waiting)
		rep.Waiting("ready", total-len(waiting), total, waiting)
		return len(waiting) == 0, nil
	})
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("wait interrupted: %w", ctx.Err())
	case wait.Interrupted(err):
		return c.notReadyError(ctx, pending, last, timeout)
	}
	return err
}

// pollReady lists each pending group once and drops the objects that are Current.
func (c *Client) pollReady(ctx context.Context, s ApplySet, pending map[groupKey]map[string]manifest.ID, last map[manifest.ID]*status.Result) error {
	type listed struct {
		key   groupKey
		items []unstructured.Unstructured
	}
	results := make(chan listed, len(pending))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for k := range pending {
		g.Go(func() error {
			items, err := c.listObjects(gctx, k, s.Selector())
			if err != nil {
				return err
			}
			results <- listed{key: k, items: items}
			return nil
		})
	}
	err := g.Wait()
	close(results)
	if err != nil {
		return fmt.Errorf("wait for readiness: %w", err)
	}
	for l := range results {
		for i := range l.items {
			item := &l.items[i]
			id, ok := pending[l.key][item.GetName()]
			if !ok {
				continue
			}
			r, err := status.Compute(item)
			if err != nil {
				r = &status.Result{Status: status.UnknownStatus, Message: err.Error()}
			}
			last[id] = r
			if r.Status == status.CurrentStatus {
				delete(pending[l.key], item.GetName())
			}
		}
		if len(pending[l.key]) == 0 {
			delete(pending, l.key)
		}
	}
	return nil
}

// notReadyError names every object that is still not ready with its status and, where the
// cause lies in pods or events, the reason from there.
func (c *Client) notReadyError(ctx context.Context, pending map[groupKey]map[string]manifest.ID, last map[manifest.ID]*status.Result, timeout time.Duration) error {
	var lines []string
	for k, names := range pending {
		for name, id := range names {
			line := id.String() + ": "
			if r := last[id]; r != nil {
				line += string(r.Status)
				if r.Message != "" {
					line += ": " + r.Message
				}
			} else {
				line += "not found"
			}
			if why := c.explain(ctx, k, name); why != "" {
				line += "; " + why
			}
			lines = append(lines, line)
		}
	}
	sort.Strings(lines)
	return fmt.Errorf("%w after %s: %d of them:\n  %s", ErrNotReady, timeout, len(lines), strings.Join(lines, "\n  "))
}

// ErrNotReady is returned (wrapped) when waiting times out.
var ErrNotReady = errors.New("objects not ready")
