"""Credit default: the sample project a data-science team copies (data, pipeline steps, pipeline)."""
