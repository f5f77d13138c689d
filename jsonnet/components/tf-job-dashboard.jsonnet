// tf-job-dashboard: a web UI for training jobs (routed at /tfjobs/). v0.3's TFJob dashboard is
// long gone; Headlamp, the Kubernetes SIG UI project, lists and inspects TFJobs and PyTorchJobs
// (and their pods and logs) like any resource. Headlamp acts with the token the user signs in
// with; this component creates a read-only account for that:
//   kubectl -n <namespace> create token tf-job-viewer
local images = import 'kfdeploy/images.libsonnet';
local k = import 'kfdeploy/k.libsonnet';

{
  description: 'Training job UI (Headlamp, at /tfjobs/) with a read-only tf-job-viewer account for TFJobs, PyTorchJobs, their pods and logs',
  params: {
    image: { default: images.headlamp, description: 'Headlamp image' },
  },
  render(p, env)::
    local ns = env.namespace;
    local name = 'tf-job-dashboard';
    local labels = k.labels(name);
    local selector = k.selector(name);
    // Headlamp acts with the token the user signs in with, not as the gateway's user: admins only.
    local routes = [k.mapping(name, '/tfjobs/', name, ns, 80, rewrite='', signIn='kubernetes-token', ui='TFJob dashboard (Headlamp)', allowed='admins')];
    [
      // Headlamp itself needs no permissions: every request carries the user's token.
      k.serviceAccount(name, ns, labels),
      // The viewer: read-only, training jobs and what they run, in this namespace.
      k.namespacedAccess('tf-job-viewer', ns, [
        k.rule(['kubeflow.org'], ['tfjobs', 'pytorchjobs'], k.read),
        k.rule([''], ['pods', 'pods/log', 'events', 'services', 'configmaps'], k.read),
      ], labels, automount=false),
      // Cluster scope, read-only: Headlamp finds custom resource kinds through their
      // CustomResourceDefinitions, which are cluster-scoped objects.
      k.clusterAccess('tf-job-viewer', ns, [k.rule(['apiextensions.k8s.io'], ['customresourcedefinitions'], k.read)], labels),
      k.service(name,
                ns,
                selector,
                [{ name: 'http', port: 80, targetPort: 'http' }],
                labels=labels,
                annotations=k.ambassadorConfig(routes)),
      k.httpRoutes(env, routes, labels),
      k.deployment(name, ns, selector, {
        serviceAccountName: name,
        securityContext: k.podSecurityContext(),
        containers: [{
          name: 'headlamp',
          image: p.image,
          // The image's entrypoint passes -html-static-dir and -plugins-dir (Dockerfile@v0.45.0).
          // In-cluster mode: every request is made with the token the user signs in with (the
          // service account's token only builds the cluster's address and CA). There are no
          // plugins to reload, so the plugin watcher is off. The context is named (as the chart
          // does) so that Headlamp doesn't read kube-system/kubeadm-config with its own account
          // to derive a name (deriveInClusterName in backend/pkg/kubeconfig/kubeconfig.go).
          args: ['-in-cluster', '-in-cluster-context-name=main', '-base-url=/tfjobs', '-watch-plugins-changes=false'],
          env: [
            // Headlamp creates its user-plugins and kubeconfigs directories under the user
            // config directory at start; on the scratch volume, not the read-only root.
            k.env('XDG_CONFIG_HOME', '/tmp/.config'),
          ],
          ports: [{ name: 'http', containerPort: 4466 }],
          resources: k.resources('50m', '128Mi', memoryLimit='256Mi'),
          readinessProbe: k.httpProbe('/tfjobs/', 'http'),
          livenessProbe: k.httpProbe('/tfjobs/', 'http', initialDelaySeconds=15, periodSeconds=30),
          // Headlamp's image user (headlamp, 100:101). The root filesystem stays read-only: at
          // start Headlamp copies its static directory into a new directory under the temporary
          // directory and rewrites index.html there for the base URL (copyStaticFiles and
          // baseURLReplace in backend/cmd/headlamp.go@v0.45.0), and it stops if it cannot. /tmp
          // is an emptyDir large enough for that copy; each container restart adds one more.
          securityContext: k.securityContext(runAsUser=100, runAsGroup=101),
          volumeMounts: [k.tmpMount],
        }],
        volumes: [k.emptyDir('tmp', sizeLimit='1Gi')],
      }, labels=labels),
    ],
}
