"""Workbook tooling, not pipeline steps: the headless notebook runner (`notebooks`), the workshop
build (`workshop`), the benchmark command and its `bench_*` functions (`bench`, `benchmarks`,
`bench_scale`), the environment check of the setup notebook (`environment`) and the quick start of
nbstripout and JupyterLab (`launch`)."""
