# frozen_string_literal: true

require "json"
require "tmpdir"

# Builders for client-features payloads used across the specs.
module FlagPayloads
  module_function

  # Writes `json` to flags.json in a fresh temporary directory and yields
  # its path; the directory is removed afterwards.
  def with_flags_file(json = payload(flag("f")))
    Dir.mktmpdir do |dir|
      path = File.join(dir, "flags.json")
      File.write(path, json)
      yield path
    end
  end

  def payload(*features, segments: nil)
    body = { version: 2, features: features }
    body[:segments] = segments if segments
    JSON.generate(body)
  end

  def flag(name, enabled: true, strategies: [{ name: "default" }], variants: nil, impression_data: false,
           dependencies: nil)
    f = { name: name, enabled: enabled, strategies: strategies, impressionData: impression_data }
    f[:variants] = variants if variants
    f[:dependencies] = dependencies if dependencies
    f
  end

  def rollout(percent, stickiness: "default", group_id: nil, constraints: [], variants: nil)
    s = { name: "flexibleRollout",
          parameters: { rollout: percent.to_s, stickiness: stickiness, groupId: group_id }.compact,
          constraints: constraints }
    s[:variants] = variants if variants
    s
  end

  def constraint(context_name, operator, values: nil, value: nil, inverted: false, case_insensitive: false)
    { contextName: context_name, operator: operator, values: values, value: value, inverted: inverted,
      caseInsensitive: case_insensitive }.compact
  end
end
