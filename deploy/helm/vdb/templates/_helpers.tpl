{{- define "vdb.name" -}}{{ .Release.Name }}-vdb{{- end -}}
{{- define "vdb.labels" -}}
app.kubernetes.io/name: vdb
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
