package manifest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

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
	var m map[string]any
	if err := yaml.Unmarshal(raw, &m); err != nil {
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
