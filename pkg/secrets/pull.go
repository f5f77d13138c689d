package secrets

import (
	"encoding/json"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// PullComponent is the part of the store's keys, and of the placeholders, under which the docker
// configs of spec.images.pullSecrets are kept: image-pull/<Secret name>.
const PullComponent = "image-pull"

// DockerConfigKey is the key of a kubernetes.io/dockerconfigjson Secret's data.
const DockerConfigKey = ".dockerconfigjson"

// checkDockerConfig checks that the kubelet can use a docker config (as `docker login` or
// `skopeo login --authfile` write it): JSON with logins under "auths". Errors never quote it.
func checkDockerConfig(data []byte) error {
	var cfg struct {
		Auths       map[string]json.RawMessage `json:"auths"`
		CredsStore  string                     `json:"credsStore"`
		CredHelpers map[string]string          `json:"credHelpers"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return fmt.Errorf("not valid JSON (at byte %d): expected a docker config such as 'skopeo login --authfile FILE' writes", syn.Offset)
		}
		return errors.New("not a docker config: expected a JSON object with logins under \"auths\"")
	}
	if len(cfg.Auths) == 0 {
		if cfg.CredsStore != "" || len(cfg.CredHelpers) > 0 {
			return errors.New("has no logins under \"auths\": its credentials are in a credential helper, which the cluster cannot use; log in to a file of its own instead ('skopeo login --authfile FILE REGISTRY')")
		}
		return errors.New("has no logins under \"auths\": log in to the registry into it first ('skopeo login --authfile FILE REGISTRY')")
	}
	return nil
}

// EnsureDockerConfig stores the docker config of pull Secret name and returns its placeholder.
// data nil keeps what the store has (the file was removed after an earlier generate); a store
// without it is an error naming the file. The value replaces a stored one that differs: a new
// login in the file is applied.
func (s *Store) EnsureDockerConfig(name string, data []byte, file string) (string, error) {
	key := PullComponent + "/" + name
	if data == nil {
		if _, ok := s.values[key]; !ok {
			return "", fmt.Errorf("pull secret %s: docker config file %s does not exist and %s has no copy of it: create the file (e.g. 'skopeo login --authfile %s REGISTRY') and run generate", name, file, s.path, file)
		}
		return Placeholder(PullComponent, name), nil
	}
	if err := checkDockerConfig(data); err != nil {
		return "", fmt.Errorf("pull secret %s: docker config %s: %w", name, file, err)
	}
	if s.values[key] != string(data) {
		s.values[key] = string(data)
		s.dirty = true
	}
	return Placeholder(PullComponent, name), nil
}

// DockerConfigSecret is the kubernetes.io/dockerconfigjson Secret name of namespace whose
// config is the placeholder; apply puts the stored config in its place (Resolve).
func DockerConfigSecret(name, namespace, placeholder string, labels map[string]string) *unstructured.Unstructured {
	l := map[string]any{}
	for k, v := range labels {
		l[k] = v
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1",
		"kind":       "Secret",
		"metadata":   map[string]any{"name": name, "namespace": namespace, "labels": l},
		"type":       "kubernetes.io/dockerconfigjson",
		"stringData": map[string]any{DockerConfigKey: placeholder},
	}}
}
