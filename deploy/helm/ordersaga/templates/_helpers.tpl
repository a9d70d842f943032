{{/* The release's base name. */}}
{{- define "ordersaga.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "ordersaga.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "ordersaga.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "ordersaga.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The selector of one service's pods: dict "root" $ "service" name. */}}
{{- define "ordersaga.selector" -}}
app.kubernetes.io/name: {{ include "ordersaga.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .service }}
{{- end -}}

{{- define "ordersaga.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "ordersaga.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ordersaga.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Secret the settings' passwords and keys come from. */}}
{{- define "ordersaga.secretName" -}}
{{- default (printf "%s-secrets" (include "ordersaga.fullname" .)) .Values.secrets.existingSecret -}}
{{- end -}}

{{/* One service's values: defaults merged under services.<name>. dict "root" $ "service" name */}}
{{- define "ordersaga.serviceValues" -}}
{{- $own := index .root.Values.services .service | default dict -}}
{{- toYaml (mergeOverwrite (deepCopy .root.Values.defaults) (deepCopy $own)) -}}
{{- end -}}

{{/* A setting's value as an environment variable's: numbers without exponents, booleans
     and strings as they are. */}}
{{- define "ordersaga.envValue" -}}
{{- $v := . -}}
{{- if kindIs "float64" $v -}}
{{- if eq $v (floor $v) -}}{{- printf "%d" (int64 $v) -}}{{- else -}}{{- $v -}}{{- end -}}
{{- else -}}
{{- $v -}}
{{- end -}}
{{- end -}}

{{/* The settings as "ORDERSAGA_NAME: value" lines (nulls left out): dict "settings" map. */}}
{{- define "ordersaga.settingsEnv" -}}
{{- range $name, $value := .settings }}
{{- if not (kindIs "invalid" $value) }}
{{ printf "ORDERSAGA_%s" (upper $name) }}: {{ include "ordersaga.envValue" $value | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The secret settings one pod needs, as env entries: dict "root" $ "names" list. */}}
{{- define "ordersaga.secretEnv" -}}
{{- $root := .root -}}
{{- $secret := default (include "ordersaga.secretName" $root) .secret -}}
{{- range $name := .names }}
{{- $key := index $root.Values.secrets.keys $name }}
{{- if $key }}
- name: {{ printf "ORDERSAGA_%s" (upper $name) }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $key }}
{{- end }}
{{- end }}
{{- end -}}

{{/* terminationGracePeriodSeconds: the preStop sleep, the replica's shutdown grace and a
     margin, whole seconds. */}}
{{- define "ordersaga.terminationGrace" -}}
{{- $grace := .Values.settings.shutdown_grace | default 20 | float64 | ceil | int -}}
{{- add .Values.termination.preStopSeconds $grace .Values.termination.marginSeconds -}}
{{- end -}}

{{/* The port a service's /healthz and /readyz are on: the order API's for order, the
     metrics server's for the others (no other HTTP server runs in them). */}}
{{- define "ordersaga.probePort" -}}
{{- if eq . "order" -}}api{{- else -}}metrics{{- end -}}
{{- end -}}
