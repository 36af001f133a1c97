# frozen_string_literal: true

require "uri"
require_relative "page"

module Forkflag
  class Web
    # "/": the process that served the request: who it is (pid, parent,
    # fork generation, server worker), where its flags come from and how
    # fresh they are, and what it evaluated since its last metrics report.
    class ProcessPage < Page
      # @return [String]
      def title
        "This process"
      end

      # @return [Markup]
      def content
        stats = client.stats
        [
          tag("h1", "Process #{Process.pid}"),
          facts(identity_rows(stats), id: "identity"),
          tag("h2", "Source"),
          facts(source_rows, id: "source"),
          tag("h2", "State"),
          facts(state_rows(stats), id: "state"),
          tag("h2", "Evaluations since the last metrics report"),
          counts_table
        ]
      end

      private

      def identity_rows(stats)
        who = Page.identity(client)
        [["pid", who[:pid]], ["parent pid", who[:parent_pid]],
         ["fork generation", "#{stats[:fork_generation]} (forks since the client was created)"],
         ["server worker", who[:worker] || tag("span", "not known (no server hook reported it)", class: "muted")],
         ["server", server_name], ["forkflag", Forkflag::VERSION], ["ruby", RUBY_DESCRIPTION]]
      end

      def server_name
        return "Puma #{::Puma::Const::PUMA_VERSION}" if defined?(::Puma::Const::PUMA_VERSION)

        tag("span", "not known", class: "muted")
      end

      def source_rows
        config = client.config
        [["source", source_of(config)], ["app name", config.app_name], ["environment", config.environment],
         ["project", config.project], ["refresh interval", seconds(config.refresh_interval)],
         ["metrics", config.disable_metrics ? "off" : "every #{seconds(config.metrics_interval)}"]]
      end

      def seconds(value)
        value = value.to_f
        value == value.round ? "#{value.round} s" : "#{value} s"
      end

      # The source, without credentials (a URL's user and password are left out).
      def source_of(config)
        if config.url
          "Unleash server #{without_credentials(config.url)}"
        elsif config.file
          "file #{config.file}"
        else
          "bootstrap only"
        end
      end

      def without_credentials(url)
        uri = URI.parse(url.to_s)
        uri.userinfo = nil
        uri.to_s
      rescue URI::Error
        "(unreadable URL)"
      end

      def state_rows(stats)
        [["state", stats[:state]], ["background thread alive", yes_no(stats[:thread_alive])],
         ["ready", ready_text(stats[:ready])], ["last refresh", last_refresh(stats[:last_refresh_at])],
         ["refreshes", stats[:refreshes]], ["failures in a row", stats[:failures]],
         ["backoff", backoff(stats)], ["flags loaded", stats[:flags]],
         ["connection id", tag("code", stats[:connection_id])],
         ["evaluations reported", "#{stats[:reported_evaluations]} (sent in metrics reports so far)"]]
      end

      def ready_text(ready)
        return yes_no(true) if ready

        join(yes_no(false), " (not yet confirmed by the source; answering from the bootstrap or backup)")
      end

      def last_refresh(at)
        return tag("span", "never", class: "muted") if at.nil?

        age = Process.clock_gettime(Process::CLOCK_REALTIME) - at.to_f
        "#{at.utc.strftime("%Y-%m-%d %H:%M:%S.%L UTC")} (#{age_text(age)})"
      end

      def age_text(seconds)
        return "just now" if seconds < 1
        return format("%.0f s ago", seconds) if seconds < 120
        return format("%.0f min ago", seconds / 60) if seconds < 7200

        format("%.1f h ago", seconds / 3600)
      end

      def backoff(stats)
        if stats[:polling_stopped]
          tag("span", "polling stopped (the server refused the token: 401 or 403); the flags stay as they are",
              class: "off")
        elsif stats[:refresh_delay] && stats[:refresh_delay] > client.config.refresh_interval
          tag("span", "backing off: the next refresh #{seconds(stats[:refresh_delay])} after the last attempt",
              class: "off")
        else
          "none"
        end
      end

      def counts_table
        counts = client.counts.select { |_, c| (c[:yes].to_i + c[:no].to_i + c[:variants].to_h.size).positive? }
        if counts.empty?
          return tag("p", "None: this process evaluated no flag since its last report (or since it was forked).",
                     class: "muted", id: "counts")
        end

        rows = counts.sort_by { |name, _| name }.map do |name, c|
          [flag_link(name), c[:yes], c[:no], variant_counts(c[:variants]) || tag("span", "–", class: "muted")]
        end
        table(%w[flag yes no variants], rows, id: "counts")
      end
    end
  end
end
