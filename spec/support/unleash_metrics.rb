# frozen_string_literal: true

# Reading the metrics the real Unleash server stored (mixed into
# UnleashServer, which provides `admin` and `wait_for`).
module UnleashMetrics
  # Parsed JSON of /api/admin/client-metrics/features/:name/raw:
  # {"version"=>1, "maturity"=>"stable", "data"=>[{"timestamp", "yes", "no",
  # "appName", "environment", "featureName", "variants"?}, ...]}.
  def raw_metrics(name, hours_back: nil)
    query = hours_back ? "?hoursBack=#{Integer(hours_back)}" : ""
    admin(:get, "/admin/client-metrics/features/#{esc(name)}/raw#{query}")
  end

  # Sums the raw metrics of a flag: {yes:, no:, variants: {name => count}}.
  def yes_no_totals(name, app_name: nil, environment: nil)
    totals = { yes: 0, no: 0, variants: Hash.new(0) }
    raw_metrics(name).fetch("data").each do |row|
      next unless row_matches?(row, app_name, environment)

      totals[:yes] += row["yes"].to_i
      totals[:no] += row["no"].to_i
      (row["variants"] || {}).each { |variant, n| totals[:variants][variant] += n.to_i }
    end
    totals[:variants] = totals[:variants].to_h
    totals
  end

  # Waits until a flag's totals for the app reach `expected` ({yes:, no:,
  # variants:}; keys left out are not waited for) in every part, and
  # returns the last totals read: equal to `expected` when all went well,
  # or what the server had at the timeout (or more), for the caller's
  # comparison to show. The server stores yes/no and variant counts in
  # separate writes, and a new flag's only after a delay, so a total read
  # too early is short by a part.
  def settled_totals(name, expected, app_name: nil, timeout: 15)
    seen = nil
    begin
      wait_for(timeout: timeout, interval: 0.1, message: "metrics of #{name} reaching #{expected}") do
        seen = yes_no_totals(name, app_name: app_name)
        totals_reached?(seen, expected)
      end
    rescue UnleashServer::TimeoutError
      nil
    end
    seen
  end

  # Whether every part of `expected` is in `seen` (or more).
  def totals_reached?(seen, expected)
    %i[yes no].all? { |k| seen[k] >= expected.fetch(k, 0) } &&
      expected.fetch(:variants, {}).all? { |variant, n| seen[:variants].fetch(variant, 0) >= n }
  end

  private

  def row_matches?(row, app_name, environment)
    (app_name.nil? || row["appName"] == app_name) && (environment.nil? || row["environment"] == environment)
  end
end
