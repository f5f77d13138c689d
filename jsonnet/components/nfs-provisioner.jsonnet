// nfs-provisioner: dynamic PersistentVolumes on an existing NFS export (the step the Kubeflow v0.3
// guide did by hand): a StorageClass whose claims get a subdirectory of the export each.
local images = import 'kfdeploy/images.libsonnet';
local k = import 'kfdeploy/k.libsonnet';

local reclaimPolicies = ['Delete', 'Retain'];

{
  description: 'NFS subdir external provisioner: a StorageClass giving each claim a subdirectory of an NFS export (parameters server and path are required)',
  params: {
    server: { default: null, description: 'NFS server (host name or IP address); required' },
    path: { default: null, description: 'Exported directory on the server, e.g. /srv/nfs/kubeflow; required' },
    image: { default: images.nfsProvisioner, description: 'Provisioner image' },
    storageClassName: { default: 'nfs-client', description: 'Name of the StorageClass' },
    defaultClass: { default: false, description: "Make it the cluster's default StorageClass" },
    reclaimPolicy: { default: 'Delete', description: 'What happens to a volume when its claim is deleted: Delete or Retain' },
    archiveOnDelete: { default: true, description: 'With Delete, keep the data in an archived-<name> directory instead of removing it' },
    mountOptions: { default: [], description: "NFS mount options of the volumes, e.g. ['nfsvers=4.1'] ([]: the client negotiates)" },
  },
  render(p, env)::
    assert p.server != null && p.server != '' : "nfs-provisioner: set parameter server to the NFS server's address";
    assert p.path != null && std.startsWith(p.path, '/') : 'nfs-provisioner: set parameter path to the exported directory (an absolute path)';
    assert std.member(reclaimPolicies, p.reclaimPolicy) : 'nfs-provisioner: reclaimPolicy must be Delete or Retain, got %s' % p.reclaimPolicy;
    local ns = env.namespace;
    local name = 'nfs-provisioner';
    local labels = k.labels(name);
    local selector = k.selector(name);
    // Unique per app, so that two apps' provisioners don't serve each other's claims.
    local provisioner = 'kfdeploy.dev/nfs-' + ns;
    [
      k.object('storage.k8s.io/v1',
               'StorageClass',
               p.storageClassName,
               labels=labels,
               annotations={ 'storageclass.kubernetes.io/is-default-class': std.toString(p.defaultClass) }) + {
        provisioner: provisioner,
        reclaimPolicy: p.reclaimPolicy,
        volumeBindingMode: 'Immediate',
        allowVolumeExpansion: false,
        [if std.length(p.mountOptions) > 0 then 'mountOptions']: p.mountOptions,
        parameters: { archiveOnDelete: std.toString(p.archiveOnDelete) },
      },
      k.serviceAccount(name, ns, labels),
      // Cluster scope is required: PersistentVolumes and StorageClasses are cluster-scoped, and
      // the claims to serve may be in any namespace. Upstream also grants reading nodes
      // (deploy/rbac.yaml@nfs-subdir-external-provisioner-4.0.18): the library reads the node a
      // claim was scheduled to, which only WaitForFirstConsumer classes set; this class binds
      // Immediate.
      k.clusterAccess(name, ns, [
        k.rule([''], ['persistentvolumes'], ['get', 'list', 'watch', 'create', 'delete']),
        k.rule([''], ['persistentvolumeclaims'], ['get', 'list', 'watch', 'update']),
        k.rule(['storage.k8s.io'], ['storageclasses'], k.read),
        k.rule([''], ['events'], ['create', 'update', 'patch']),
      ], labels),
      // Leader election, in this namespace only. v4.0.2 is built on
      // sig-storage-lib-external-provisioner v6.0.0 (go.mod@v4.0.2), whose controller locks an
      // Endpoints object (controller/controller.go, resourcelock "endpoints"), not a Lease.
      k.role(name, ns, [
        k.rule([''], ['endpoints'], ['get', 'list', 'watch', 'create', 'update', 'patch']),
      ], labels),
      k.roleBinding(name, ns, name, [name], labels),
      k.deployment(name, ns, selector, {
        serviceAccountName: name,
        // Root: the provisioner creates and removes the volumes' directories on the export,
        // whose top directory NFS servers commonly map to root.
        securityContext: k.podSecurityContext(runAsNonRoot=false),
        containers: [{
          name: 'nfs-provisioner',
          image: p.image,
          env: [
            k.env('PROVISIONER_NAME', provisioner),
            k.env('NFS_SERVER', p.server),
            k.env('NFS_PATH', p.path),
          ],
          resources: k.resources('50m', '64Mi', memoryLimit='128Mi'),
          // No probes: the provisioner serves nothing; it works through the API server (leader
          // election) and exits when it loses the connection, which restarts it.
          // Of root's capabilities it keeps only those to manage files it doesn't own (the
          // export maps root to another user when it squashes root).
          securityContext: k.securityContext(runAsUser=0, runAsNonRoot=false) + {
            capabilities: { drop: ['ALL'], add: ['CHOWN', 'DAC_OVERRIDE', 'FOWNER'] },
          },
          volumeMounts: [{ name: 'nfs-root', mountPath: '/persistentvolumes' }],
        }],
        volumes: [{ name: 'nfs-root', nfs: { server: p.server, path: p.path } }],
      }, labels=labels, strategy='Recreate'),
    ],
}
