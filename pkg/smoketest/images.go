package smoketest

// ImageOf is the image the named workload (tfjob, workflow, experiment) runs.
func (o Options) ImageOf(workload string) string {
	if image := o.Images[workload]; image != "" {
		return image
	}
	return DefaultImage
}

// WorkloadImages lists, by component, the image of each workload the run would create (none
// for skipped ones).
func WorkloadImages(opts Options) map[string]string {
	out := map[string]string{}
	for _, w := range Workloads(opts) {
		if w.Object != nil {
			out[w.Component] = opts.ImageOf(w.Name)
		}
	}
	return out
}
