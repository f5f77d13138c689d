// jupyter: a single notebook server with a persistent volume for user data; the parameters are
// the spawner options of the Kubeflow v0.3 JupyterHub (image, CPU, memory, GPUs).
local images = import 'kfdeploy/images.libsonnet';
local k = import 'kfdeploy/k.libsonnet';

{
  description: 'Jupyter notebook server (Deployment, Service, PersistentVolumeClaim for user data), routed by ambassador at /notebook/<name>/',
  params: {
    name: { default: 'jupyter', description: 'Name of the notebook server objects' },
    image: { default: images.notebookScipy, description: 'Notebook image' },
    cpu: { default: '500m', description: 'CPU request' },
    memory: { default: '1Gi', description: 'Memory request and limit' },
    gpus: { default: 0, description: 'GPUs (resource gpuResource) for the notebook' },
    gpuResource: { default: 'nvidia.com/gpu', description: 'Extended resource name of the GPUs' },
    storageSize: { default: '10Gi', description: 'Size of the user data volume' },
    storageClass: { default: null, description: "StorageClass of the user data volume (null: cluster default; '': pre-created PVs only)" },
    serviceType: { default: 'ClusterIP', description: 'Service type: ClusterIP, NodePort or LoadBalancer' },
  },
  render(p, env)::
    local labels = k.labels('jupyter', p.name);
    local selector = k.selector('jupyter', p.name);
    local base = '/notebook/' + p.name + '/';
    // The server's base URL is the route's prefix, so the path is forwarded unchanged. Its own
    // token guards it behind the gateway's sign-in.
    local routes = [k.mapping(p.name, base, p.name, env.namespace, 80, rewrite='', websocket=true, signIn='notebook-token', ui='Notebook ' + p.name, allowed='signed-in')];
    [
      k.pvc(p.name + '-data', env.namespace, p.storageSize, p.storageClass, labels=labels),
      k.service(p.name,
                env.namespace,
                selector,
                [{ name: 'http', port: 80, targetPort: 'http' }],
                p.serviceType,
                labels,
                k.ambassadorConfig(routes)),
      k.httpRoutes(env, routes, labels),
      k.deployment(p.name, env.namespace, selector, {
        securityContext: k.podSecurityContext(fsGroup=100),
        // The notebook never needs the Kubernetes API.
        automountServiceAccountToken: false,
        enableServiceLinks: false,
        containers: [{
          name: 'notebook',
          image: p.image,
          args: ['start-notebook.py', '--ServerApp.base_url=' + base],
          ports: [{ name: 'http', containerPort: 8888 }],
          resources: k.resources(p.cpu, p.memory, p.gpus, p.gpuResource),
          readinessProbe: k.httpProbe(base + 'api', 'http'),
          livenessProbe: k.httpProbe(base + 'api', 'http', initialDelaySeconds=30),
          // The notebook writes to its home directory, which is the data volume; / stays read-only.
          securityContext: k.securityContext(runAsUser=1000, readOnlyRoot=true),
          volumeMounts: [
            { name: 'data', mountPath: '/home/jovyan' },
            { name: 'tmp', mountPath: '/tmp' },
          ],
        }],
        volumes: [
          { name: 'data', persistentVolumeClaim: { claimName: p.name + '-data' } },
          { name: 'tmp', emptyDir: {} },
        ],
      }, labels=labels, strategy='Recreate'),
    ],
}
