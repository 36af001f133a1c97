# frozen_string_literal: true

require_relative "markup"
require_relative "tables"
require_relative "style"

module Forkflag
  class Web
    # What every page shares: the layout (a header naming this process), the
    # navigation, and helpers for tables of plain data. A page implements
    # #title and #content (Markup) and may override #status.
    class Page
      include Html
      include Tables

      # The navigation: path, label.
      NAV = [["/", "This process"], ["/flags", "Flags"], ["/explain", "Explain"]].freeze

      # @param client [Client]
      # @param request [Request]
      def initialize(client, request)
        @client = client
        @request = request
      end

      # @return [Array(Integer, Markup)] the status and the whole document
      def render
        body = content
        [status, layout(body)]
      end

      # @return [Integer] the HTTP status (200 unless the page says otherwise)
      def status
        200
      end

      # The process that serves this request, as the header shows it.
      #
      # @param client [Client]
      # @return [Hash{Symbol=>Object}] pid:, parent_pid:, generation:, worker: (a label or nil)
      def self.identity(client)
        generation = begin
          client.stats[:fork_generation]
        rescue StandardError
          nil
        end
        { pid: Process.pid, parent_pid: Process.ppid, generation: generation, worker: worker_label }
      end

      # Which server worker this process is, when the server says: Puma's
      # worker index (recorded by forkflag's Puma hooks at worker boot).
      #
      # @return [String, nil]
      def self.worker_label
        index = defined?(Forkflag::Puma) && Forkflag::Puma.respond_to?(:worker_index) && Forkflag::Puma.worker_index
        index.nil? || index == false ? nil : "Puma worker #{index}"
      end

      private

      attr_reader :client, :request

      def layout(body)
        document = tag("html", [head_element, tag("body", [top, tag("main", body)])], lang: "en")
        join(Markup.new("<!DOCTYPE html>\n"), document)
      end

      def head_element
        tag("head", [
              void("meta", charset: "utf-8"),
              void("meta", name: "viewport", content: "width=device-width, initial-scale=1"),
              tag("title", "#{title} · forkflag · pid #{Process.pid}"),
              void("link", rel: "stylesheet", href: request.href(Style::PATH)),
              void("link", rel: "icon", type: "image/svg+xml", href: request.href(Style::ICON_PATH))
            ])
      end

      def top
        tag("header", [tag("span", "forkflag", class: "brand"), navigation, process_line], class: "top")
      end

      def navigation
        links = NAV.map do |path, label|
          current = request.path == path || (path != "/" && request.path.start_with?(path))
          tag("a", label, href: request.href(path), class: current ? "current" : nil)
        end
        tag("nav", links)
      end

      def process_line
        who = Page.identity(client)
        parts = ["pid #{who[:pid]}", "generation #{who[:generation].nil? ? "?" : who[:generation]}",
                 "parent #{who[:parent_pid]}"]
        parts.unshift(who[:worker]) if who[:worker]
        tag("span", parts.join(" · "), class: "process", id: "process", data_pid: who[:pid],
                                       data_generation: who[:generation])
      end
    end
  end
end
