// Every container image the built-in components use, pinned by version tag. Components take
// these as parameter defaults (so a mirror can be set per app); docs/components.md lists them
// with their upstream projects, and a test checks that the two agree.
{
  // ambassador: Emissary-ingress (github.com/emissary-ingress/emissary), Ambassador's successor.
  emissary: 'docker.io/emissaryingress/emissary:3.9.1',

  // argo: Argo Workflows (github.com/argoproj/argo-workflows).
  argoController: 'quay.io/argoproj/workflow-controller:v3.5.12',
  argoServer: 'quay.io/argoproj/argocli:v3.5.12',
  argoExecutor: 'quay.io/argoproj/argoexec:v3.5.12',

  // centraldashboard: Kubeflow Central Dashboard (github.com/kubeflow/kubeflow, components/centraldashboard).
  centralDashboard: 'docker.io/kubeflownotebookswg/centraldashboard:v1.9.0',

  // jupyterhub: Zero to JupyterHub images (github.com/jupyterhub/zero-to-jupyterhub-k8s,
  // github.com/jupyterhub/configurable-http-proxy); notebooks from github.com/jupyter/docker-stacks.
  jupyterhub: 'quay.io/jupyterhub/k8s-hub:4.1.0',
  configurableHttpProxy: 'quay.io/jupyterhub/configurable-http-proxy:4.6.3',
  notebookScipy: 'quay.io/jupyter/scipy-notebook:2024-12-09',
  notebookTensorflow: 'quay.io/jupyter/tensorflow-notebook:2024-12-09',
  notebookPytorch: 'quay.io/jupyter/pytorch-notebook:2024-12-09',

  // katib: Katib v0.19.0 (github.com/kubeflow/katib), as its release manifests name the images
  // (manifests/v1beta1/installs/katib-standalone/kustomization.yaml and katib-config.yaml at
  // v0.19.0; Katib publishes on ghcr.io from v0.18), and MySQL (github.com/docker-library/mysql).
  katibController: 'ghcr.io/kubeflow/katib/katib-controller:v0.19.0',
  katibDbManager: 'ghcr.io/kubeflow/katib/katib-db-manager:v0.19.0',
  katibUi: 'ghcr.io/kubeflow/katib/katib-ui:v0.19.0',
  katibFileMetricsCollector: 'ghcr.io/kubeflow/katib/file-metrics-collector:v0.19.0',
  katibTfEventMetricsCollector: 'ghcr.io/kubeflow/katib/tfevent-metrics-collector:v0.19.0',
  katibEarlyStoppingMedianStop: 'ghcr.io/kubeflow/katib/earlystopping-medianstop:v0.19.0',
  // The training image of the trial templates the UI offers (controller/trial-templates.yaml@v0.19.0).
  katibTrialPytorchMnist: 'ghcr.io/kubeflow/katib/pytorch-mnist-cpu:v0.19.0',
  // Suggestion service image per algorithm, as in Katib's katib-config; the controller starts one
  // suggestion Deployment + Service per Experiment from these. goptuna (a Go service) also
  // serves random and tpe (pkg/suggestion/v1beta1/goptuna@v0.19.0); upstream uses hyperopt.
  katibSuggestions: {
    random: 'ghcr.io/kubeflow/katib/suggestion-hyperopt:v0.19.0',
    tpe: 'ghcr.io/kubeflow/katib/suggestion-hyperopt:v0.19.0',
    grid: 'ghcr.io/kubeflow/katib/suggestion-optuna:v0.19.0',
    'multivariate-tpe': 'ghcr.io/kubeflow/katib/suggestion-optuna:v0.19.0',
    cmaes: 'ghcr.io/kubeflow/katib/suggestion-goptuna:v0.19.0',
    sobol: 'ghcr.io/kubeflow/katib/suggestion-goptuna:v0.19.0',
    hyperband: 'ghcr.io/kubeflow/katib/suggestion-hyperband:v0.19.0',
    bayesianoptimization: 'ghcr.io/kubeflow/katib/suggestion-skopt:v0.19.0',
  },
  mysql: 'docker.io/library/mysql:8.0.40',

  // modeldb: the Kubeflow Model Registry (github.com/kubeflow/model-registry), ModelDB's successor
  // in Kubeflow, over ML Metadata (github.com/google/ml-metadata).
  modelRegistry: 'docker.io/kubeflow/model-registry:v0.2.11',
  mlMetadataServer: 'gcr.io/tfx-oss-public/ml_metadata_store_server:1.14.0',

  // tf-job-operator: Kubeflow Training Operator v1.7.0 (github.com/kubeflow/training-operator).
  trainingOperator: 'docker.io/kubeflow/training-operator:v1-855e096',

  // tf-job-dashboard: Headlamp (github.com/kubernetes-sigs/headlamp), a Kubernetes SIG UI project.
  headlamp: 'ghcr.io/headlamp-k8s/headlamp:v0.26.0',

  // k8s-dashboard: Kubernetes Dashboard (github.com/kubernetes/dashboard).
  k8sDashboard: 'docker.io/kubernetesui/dashboard:v2.7.0',
  k8sDashboardMetricsScraper: 'docker.io/kubernetesui/metrics-scraper:v1.0.8',

  // spartakus: Spartakus usage reporting (github.com/kubernetes-retired/spartakus), as Kubeflow v0.3 used it.
  spartakus: 'gcr.io/google_containers/spartakus-amd64:v1.1.0',

  // nvidia-device-plugin: NVIDIA device plugin (github.com/NVIDIA/k8s-device-plugin).
  nvidiaDevicePlugin: 'nvcr.io/nvidia/k8s-device-plugin:v0.17.0',

  // nfs-provisioner: NFS subdir external provisioner (github.com/kubernetes-sigs/nfs-subdir-external-provisioner).
  nfsProvisioner: 'registry.k8s.io/sig-storage/nfs-subdir-external-provisioner:v4.0.2',
}
