// nvidia-device-plugin: makes nvidia.com/gpu allocatable on GPU nodes (the step the Kubeflow v0.3
// guide did by hand). A DaemonSet on the nodes matching nodeSelector; the NVIDIA driver and
// container toolkit must already be installed there.
local images = import 'kfdeploy/images.libsonnet';
local k = import 'kfdeploy/k.libsonnet';

{
  description: 'NVIDIA device plugin DaemonSet making nvidia.com/gpu allocatable on GPU nodes (those matching nodeSelector)',
  params: {
    image: { default: images.nvidiaDevicePlugin, description: 'NVIDIA device plugin image' },
    nodeSelector: { default: { 'nvidia.com/gpu.present': 'true' }, description: 'Labels of the GPU nodes to run on (NVIDIA GPU Feature Discovery sets nvidia.com/gpu.present)' },
    priorityClassName: { default: 'system-node-critical', description: "Priority class of the plugin's pods ('' for none, e.g. where critical classes are reserved to kube-system)" },
  },
  render(p, env)::
    local name = 'nvidia-device-plugin';
    local labels = k.labels(name);
    local selector = k.selector(name);
    [
      k.daemonSet(name, env.namespace, selector, {
        nodeSelector: p.nodeSelector,
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
