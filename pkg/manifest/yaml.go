package manifest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"strconv"
	"sync"
	"unicode/utf8"

	yamlv2 "go.yaml.in/yaml/v2"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Encode writes objects as a YAML stream with sorted keys: the same objects give the same bytes.
func Encode(objs []*unstructured.Unstructured) ([]byte, error) {
	var buf bytes.Buffer
	for _, o := range objs {
		data, err := yaml.Marshal(o.Object)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", IDOf(o), err)
		}
		buf.WriteString("---\n")
		buf.Write(data)
	}
	return buf.Bytes(), nil
}

// Decode reads a YAML (or JSON) stream of objects; errors name the file and the document.
// Lists (kind: List) are expanded; empty documents are skipped. The documents are decoded
// concurrently (decoding is most of the time a large app takes to load) and kept in order;
// the error is the first document's that fails, as if they were read one by one.
func Decode(path string, data []byte) ([]*unstructured.Unstructured, error) {
	docs, readErr := splitDocuments(data)
	decoded := make([]decodedDocument, len(docs))
	// Contiguous runs of documents per worker: few goroutines, no channel per document.
	workers := min(runtime.GOMAXPROCS(0), (len(docs)+minDocumentsPerWorker-1)/minDocumentsPerWorker)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w * len(docs) / workers; i < (w+1)*len(docs)/workers; i++ {
				decoded[i].objs, decoded[i].err = decodeDocument(docs[i])
			}
		})
	}
	wg.Wait()
	var objs []*unstructured.Unstructured
	for i, d := range decoded {
		if d.err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", path, i+1, d.err)
		}
		objs = append(objs, d.objs...)
	}
	if readErr != nil {
		return nil, fmt.Errorf("%s: document %d: %w", path, len(docs)+1, readErr)
	}
	return objs, nil
}

// minDocumentsPerWorker keeps small streams (most components) on one goroutine.
const minDocumentsPerWorker = 64

// decodedDocument is one document's objects, or why it could not be decoded.
type decodedDocument struct {
	objs []*unstructured.Unstructured
	err  error
}

// splitDocuments cuts a stream into its documents, up to the first that cannot be read (its
// error is returned with the documents before it).
func splitDocuments(data []byte) ([][]byte, error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		raw, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return docs, err
		}
		docs = append(docs, raw)
	}
}

// decodeDocument decodes one document: nothing for an empty one, a List's items, or one
// valid object.
func decodeDocument(raw []byte) ([]*unstructured.Unstructured, error) {
	m, err := unmarshalObject(raw)
	if err != nil {
		return nil, err
	}
	if len(m) == 0 {
		return nil, nil
	}
	o := &unstructured.Unstructured{Object: m}
	if o.IsList() {
		list, err := o.ToList()
		if err != nil {
			return nil, err
		}
		objs := make([]*unstructured.Unstructured, len(list.Items))
		for i := range list.Items {
			objs[i] = &list.Items[i]
		}
		return objs, nil
	}
	if err := Validate(o); err != nil {
		return nil, err
	}
	return []*unstructured.Unstructured{o}, nil
}

// unmarshalObject is sigs.k8s.io/yaml's Unmarshal of a document into a map[string]any, without
// its round trip through JSON bytes (a third of the time it takes): the YAML is parsed by the
// same parser and each value is converted to what that round trip makes of it (keys to
// strings as sigs.k8s.io/yaml writes them, every number to float64). What the round trip would
// change otherwise or refuse (a parse error, a document that is not a mapping, NaN or an
// infinity, a string that is not UTF-8, a key of another type or two keys that become one) is
// left to the round trip itself, so that the result and the errors are its own.
func unmarshalObject(raw []byte) (map[string]any, error) {
	var doc any
	if err := yamlv2.Unmarshal(raw, &doc); err == nil {
		if doc == nil {
			return nil, nil
		}
		if top, ok := doc.(map[any]any); ok {
			if m, ok := jsonObject(top); ok {
				return m, nil
			}
		}
	}
	var m map[string]any
	err := yaml.Unmarshal(raw, &m)
	return m, err
}

// jsonObject converts a YAML mapping as a JSON round trip would (false: not exactly).
func jsonObject(y map[any]any) (map[string]any, bool) {
	m := make(map[string]any, len(y))
	for k, v := range y {
		key, ok := jsonKey(k)
		if !ok {
			return nil, false
		}
		if _, dup := m[key]; dup {
			return nil, false
		}
		if m[key], ok = jsonValue(v); !ok {
			return nil, false
		}
	}
	return m, true
}

// jsonKey is the string sigs.k8s.io/yaml makes of a mapping's key.
func jsonKey(k any) (string, bool) {
	switch k := k.(type) {
	case string:
		return k, utf8.ValidString(k)
	case int:
		return strconv.Itoa(k), true
	case int64:
		return strconv.FormatInt(k, 10), true
	case bool:
		return strconv.FormatBool(k), true
	case float64:
		if math.IsInf(k, 0) || math.IsNaN(k) {
			return "", false
		}
		return strconv.FormatFloat(k, 'g', -1, 32), true
	}
	return "", false
}

// jsonValue converts a YAML value as a JSON round trip would (false: not exactly).
func jsonValue(v any) (any, bool) {
	switch v := v.(type) {
	case nil, bool:
		return v, true
	case string:
		return v, utf8.ValidString(v)
	case int:
		return float64(v), true
	case int64:
		return float64(v), true
	case uint64:
		return float64(v), true
	case float64:
		return v, !math.IsInf(v, 0) && !math.IsNaN(v)
	case map[any]any:
		return jsonObject(v)
	case []any:
		out := make([]any, len(v))
		for i, item := range v {
			var ok bool
			if out[i], ok = jsonValue(item); !ok {
				return nil, false
			}
		}
		return out, true
	}
	return nil, false
}
