// nvidia-device-plugin: makes nvidia.com/gpu allocatable on GPU nodes (the step the Kubeflow v0.3
// guide did by hand). A DaemonSet; the NVIDIA driver and container toolkit must already be
// installed on the GPU nodes.
//
// Node selection: by default every schedulable node (tolerating the nvidia.com/gpu taint), as
// upstream's static manifest does (deployments/static/nvidia-device-plugin.yml@v0.20.0 has no
// nodeSelector), because a plain cluster has no label that marks its GPU nodes: the
// nvidia.com/gpu.present label that upstream's Helm chart selects on is set by GPU Feature
// Discovery, which kfdeploy does not deploy. On a node without an NVIDIA driver the plugin fails
// to load NVML; with FAIL_ON_INIT_ERROR=false it logs that and waits instead of exiting
// (internal/plugin/factory.go and cmd/nvidia-device-plugin/main.go@v0.20.0, whose default is
// true: a crash loop on every non-GPU node), so the pods there idle at a few MiB.
local images = import 'kfdeploy/images.libsonnet';
local k = import 'kfdeploy/k.libsonnet';

{
  description: 'NVIDIA device plugin DaemonSet making nvidia.com/gpu allocatable on GPU nodes (every node by default; it idles where there is no GPU)',
  params: {
    image: { default: images.nvidiaDevicePlugin, description: 'NVIDIA device plugin image' },
    nodeSelector: { default: {}, description: "Labels of the nodes to run on ({}: every node; e.g. {'nvidia.com/gpu.present': 'true'} where GPU Feature Discovery labels the GPU nodes)" },
    runtimeClassName: { default: null, description: "RuntimeClass of the plugin's pods, e.g. 'nvidia' where the NVIDIA container runtime is not the node's default (null: the default runtime)" },
    priorityClassName: { default: 'system-node-critical', description: "Priority class of the plugin's pods ('' for none, e.g. where critical classes are reserved to kube-system)" },
  },
  render(p, env)::
    assert std.isObject(p.nodeSelector) : 'nvidia-device-plugin: nodeSelector must be an object of node labels, got %s' % [p.nodeSelector];
    assert p.runtimeClassName == null || (std.isString(p.runtimeClassName) && p.runtimeClassName != '') : 'nvidia-device-plugin: runtimeClassName must be the name of a RuntimeClass or null, got %s' % [p.runtimeClassName];
    local name = 'nvidia-device-plugin';
    local labels = k.labels(name);
    local selector = k.selector(name);
    [
      k.daemonSet(name, env.namespace, selector, {
        [if std.length(p.nodeSelector) > 0 then 'nodeSelector']: p.nodeSelector,
        // The plugin finds the driver's libraries only in a container that the NVIDIA runtime
        // started; where that runtime is not the default, a RuntimeClass selects it.
        [if p.runtimeClassName != null then 'runtimeClassName']: p.runtimeClassName,
        tolerations: [
          // GPU nodes are commonly tainted so that only GPU workloads land there.
          { key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' },
          { key: 'CriticalAddonsOnly', operator: 'Exists' },
        ],
        [if p.priorityClassName != '' then 'priorityClassName']: p.priorityClassName,
        // The plugin talks to the kubelet over its socket, never to the Kubernetes API: no RBAC.
        automountServiceAccountToken: false,
        // Root: the plugin creates its socket in the kubelet's root-owned device-plugins
        // directory on the node.
        securityContext: k.podSecurityContext(runAsNonRoot=false),
        containers: [{
          name: 'nvidia-device-plugin',
          image: p.image,
          // Idle instead of exiting where NVML cannot be loaded (nodes without GPUs; see above).
          env: [k.env('FAIL_ON_INIT_ERROR', 'false')],
          resources: k.resources('10m', '32Mi', memoryLimit='128Mi'),
          // No probes: the plugin serves nothing over the network; the kubelet tracks it through
          // its registration and it re-registers when the kubelet restarts.
          // Root (see above), no capabilities; not read-only because upstream runs it with a
          // writable root filesystem and supports no read-only mode.
          securityContext: k.securityContext(runAsUser=0, readOnlyRoot=false, runAsNonRoot=false),
          volumeMounts: [{ name: 'device-plugin', mountPath: '/var/lib/kubelet/device-plugins' }],
        }],
        volumes: [{ name: 'device-plugin', hostPath: { path: '/var/lib/kubelet/device-plugins', type: 'Directory' } }],
      }, labels=labels),
    ],
}
